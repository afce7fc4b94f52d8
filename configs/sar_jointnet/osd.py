# SAR-JointNet on OSD, paper Sec. 4.2: 50K/250K/100K iterations on random 256x256 crops, batch 16 per GPU x 2 GPUs,
# b = 0.528, 5 classes. D_aug: 256x256 tiles, assembled into 2x2 mosaics by the DAKD configs.
_base_ = [
    '../_base_/models/sar_jointnet.py', '../_base_/datasets/osd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/jointnet_3stage.py'
]
# SAR-JointNet has no validation/test loop; generation: tools/generate_daug.py.
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
model = dict(balancing_factor=0.528, num_classes=5)
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(pipeline=train_pipeline))
# Every process draws its own diffusion timesteps and noise (and augmentations): the seed is seed + rank, so N GPUs
# train on N different draws instead of repeating one. The samplers still share one seed (disjoint shards) and
# generation (tools/generate_daug.py) seeds each sample itself, so D_aug does not depend on the process count.
randomness = dict(seed=0, diff_rank_seed=True)
train_cfg = dict(stage_iters=(50000, 250000, 100000))
generation_cfg = dict(out_dir='data/daug/osd', num_samples=4480)
