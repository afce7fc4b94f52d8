# SAR-JointNet's three training stages in one run (JointNetTrainLoop, paper Sec. 4.2): AdamW; stage 3 lowers the
# learning rate ten-fold (the MultiStepLR below: JointNetTrainLoop puts the first iteration of stage 3, computed
# from train_cfg.stage_iters, in place of milestones='stage3'). The paper's learning-rate values were lost from its
# text: 1e-4 for stages 1-2 and 1e-5 for stage 3 are this project's choice. Iterations: leaf configs
# (OSD 50K/250K/100K, SOS 50K/150K/50K).
stage_iters = (50000, 150000, 50000)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones='stage3', gamma=0.1)]
train_cfg = dict(type='JointNetTrainLoop', stage_iters=stage_iters, val_interval=10**9)
# No validation or test loop (the leaf configs set val_*/test_* to None after the dataset base): generation is a
# separate step (tools/generate_daug.py, JointNetGenerationLoop).
val_cfg = None
test_cfg = None
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'))  # no SegVisualizationHook: nothing is segmented
# tools/generate_daug.py defaults (every key can be overridden on its command line). The DDIM step count and eta
# have one home, the model's test_cfg (configs/_base_/models/sar_jointnet.py), which the loop reads.
generation_cfg = dict(type='JointNetGenerationLoop', out_dir=None, num_samples=1000, batch_size=16, base_seed=0,
                      grid=16)
