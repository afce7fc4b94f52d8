# A CPU-sized SAR-JointNet on the embedded synthetic OSD-style scenes (5 classes), all three stages in minutes:
#   python tools/dataset_tools/make_synthetic_osd.py data/synthetic_osd
#   python tools/train.py configs/sar_jointnet/synthetic_tiny_cpu.py
# b = 0.5 is a placeholder: compute the set's value with tools/compute_balancing_factor.py.
_base_ = [
    '../_base_/models/sar_jointnet.py', '../_base_/datasets/synthetic_osd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/jointnet_3stage.py'
]
# SAR-JointNet has no validation/test loop; generation: tools/generate_daug.py.
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
model = dict(
    balancing_factor=0.5,
    num_classes=5,
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
train_dataloader = dict(batch_size=8, num_workers=2, sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
# Every process draws its own diffusion timesteps and noise (and augmentations): the seed is seed + rank, so N GPUs
# train on N different draws instead of repeating one. The samplers still share one seed (disjoint shards) and
# generation (tools/generate_daug.py) seeds each sample itself, so D_aug does not depend on the process count.
randomness = dict(seed=0, diff_rank_seed=True)
train_cfg = dict(stage_iters=(100, 100, 100))
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100, max_keep_ckpts=1))
generation_cfg = dict(out_dir='data/daug/synthetic_tiny_cpu', num_samples=64, batch_size=16, grid=16)
