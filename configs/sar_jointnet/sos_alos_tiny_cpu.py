# A CPU-sized SAR-JointNet that runs all three stages in minutes, e.g. on the real SOS subset:
#   python tools/train.py configs/sar_jointnet/sos_alos_tiny_cpu.py \
#       --cfg-options train_dataloader.dataset.data_root=../shared/data/sos_mini
#   python tools/generate_daug.py configs/sar_jointnet/sos_alos_tiny_cpu.py work_dirs/sos_alos_tiny_cpu/iter_300.pth
# Training uses 64x64 crops (the tiny U-Net has 2 levels, ~0.2 M parameters per branch) and generation samples tiles
# of the same size (20 DDIM steps), which configs/dakd/saross_sos_alos_tiny_cpu.py assembles into 4x4 mosaics of 256.
# Sampling 128x128 tiles works too (--size 128) but leaves the training resolution and costs 12x as much per tile on
# a CPU (its attention level then sees 64x64 = 4096 tokens instead of 1024; README, DAKD study).
_base_ = './sos_alos.py'
model = dict(
    unet=dict(block_out_channels=(16, 32), layers_per_block=1, attention_resolutions=(32, ), sample_size=64,
              norm_num_groups=8, attention_head_dim=8),
    test_cfg=dict(num_inference_steps=20))
train_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RandomCrop', crop_size=(64, 64)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(stage_iters=(100, 100, 100))
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100, max_keep_ckpts=1))
generation_cfg = dict(out_dir='data/daug/sos_alos_tiny_cpu', num_samples=256, batch_size=16, size=(64, 64), grid=16)
