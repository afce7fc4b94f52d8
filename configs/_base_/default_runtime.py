# Runtime shared by every config of this project: mmseg's runtime + the plugin + the paper's metrics.
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['projects.sar_oilspill'], allow_failed_imports=False)
randomness = dict(seed=0)
# tools/train.py switches the backend to gloo when no GPU is visible (CPU distributed training).
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
# Stop at the first NaN/Inf loss (naming the iteration and the term), before a checkpoint of broken weights is
# written. A config that sets custom_hooks replaces this list: keep dict(type='NonFiniteLossHook') in it.
custom_hooks = [dict(type='NonFiniteLossHook')]
val_evaluator = dict(type='OilSpillMetric')
test_evaluator = val_evaluator
