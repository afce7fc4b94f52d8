# SAR-JointNet on SOS-ALOS (PALSAR), paper Sec. 4.2: 50K/150K/50K iterations, batch 16 per GPU x 2 GPUs, b = 0.447.
#   bash tools/dist_train.sh configs/sar_jointnet/sos_alos.py 2
#   python tools/generate_daug.py configs/sar_jointnet/sos_alos.py CKPT   # 4x the 3101 real tiles
_base_ = [
    '../_base_/models/sar_jointnet.py', '../_base_/datasets/sos_alos.py', '../_base_/default_runtime.py',
    '../_base_/schedules/jointnet_3stage.py'
]
# SAR-JointNet has no validation/test loop; generation: tools/generate_daug.py.
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
model = dict(balancing_factor=0.447, num_classes=2)
# Every process draws its own diffusion timesteps and noise (and augmentations): the seed is seed + rank, so N GPUs
# train on N different draws instead of repeating one. The samplers still share one seed (disjoint shards) and
# generation (tools/generate_daug.py) seeds each sample itself, so D_aug does not depend on the process count.
randomness = dict(seed=0, diff_rank_seed=True)
train_cfg = dict(stage_iters=(50000, 150000, 50000))
generation_cfg = dict(out_dir='data/daug/sos_alos', num_samples=12404)
