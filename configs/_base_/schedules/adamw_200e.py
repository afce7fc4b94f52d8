# SAROSS-Net schedule (paper Sec. 4.2): AdamW, 200 epochs, batch 16. The learning rate (1e-4), weight decay and
# poly decay are this project's choice (the paper's values were lost from its text).
# The paper's batch of 16 is the total over all processes: tools/train.py sets train_dataloader.batch_size to
# total_batch_size / number of processes (1 process: 16, `dist_train.sh ... 2`: 8 each; utils/cli.py). A per-process
# batch on the command line (--cfg-options train_dataloader.batch_size=N) takes precedence.
total_batch_size = 16
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(norm=dict(decay_mult=0.), head=dict(lr_mult=10.))))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=2, end=200, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=True, interval=10, max_keep_ckpts=3, save_best='mIoU',
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
