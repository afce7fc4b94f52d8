# mmseg's 20k-iteration SGD schedule (the CNN baselines), checkpoints kept to the last 3.
_base_ = 'mmseg::_base_/schedules/schedule_20k.py'
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', max_keep_ckpts=3, save_best='mIoU', rule='greater'))
