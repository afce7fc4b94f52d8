# The embedded demo (`make demo`): CPU-sized SAROSS-Net on the synthetic OSD-layout scenes (256x256), 1000 iterations
# on random 128x128 crops (about the compute of 300 iterations on whole scenes), tested on whole scenes.
# What lets a few CPU minutes learn oil spills, look-alikes and ships, not only sea and land:
# * LeakyReLU (slope 0.1) instead of ReLU in the decoder: with ReLU, the last 16-channel full-resolution stage
#   mapped every ship pixel to zero in ~97% of its channels (a dead-ReLU region: the bright hulls are the extreme
#   input, and no gradient came back through the dead units), so p(ship) was the same constant at every ship pixel
#   and ship IoU stayed 0.00; with LeakyReLU the same run gives ship IoU ~71 (README, "The embedded demo");
# * crops that a single class fills to more than 75% are redrawn (mmseg's RandomCrop cat_max_ratio): fewer
#   sea-only crops, more slick edges per iteration; a third of the crops are placed on a ship where the scene has
#   one (RareClassCrop, nnU-Net's foreground oversampling; alone it did not make ships learnable, see above);
# * class-weighted CE (sea 1, oil 3, look-alike 2, ship 25, land 1: ships are ~0.2% of the pixels) and the
#   plain class-mean Dice: the generalised Dice of dakd_losses.py weights classes by 1/(pixels)^2, which on these
#   batches stayed at ~0.99 (a class absent from the batch gets the largest weight and its predicted mass fills
#   the denominator), so it gave the rare classes almost no gradient in a short run;
# * 4x cheaper iterations (128x128 crops) and a higher learning rate (2e-3) than configs/_base_/schedules/cpu_demo.py.
_base_ = [
    '../_base_/models/saross_tiny_cpu.py', '../_base_/datasets/synthetic_osd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/cpu_demo.py'
]
crop_size = (128, 128)
train_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RareClassCrop', crop_size=crop_size, classes=(3, ), prob=1 / 3, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(decode_head=dict(
    num_classes=5,
    act_cfg=dict(type='LeakyReLU', negative_slope=0.1),
    loss_decode=[
        dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True, class_weight=[1.0, 3.0, 2.0, 25.0, 1.0]),
        dict(type='KDLoss', temperature=2.0, loss_weight=1.0),
        dict(type='SoftDiceLoss', use_generalised_weights=False, loss_weight=1.0),
    ]))
max_iters = 1000
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
