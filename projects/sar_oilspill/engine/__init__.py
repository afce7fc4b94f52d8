from .checkpoint_hook import AtomicCheckpointHook, NonFiniteCheckpointError
from .jointnet_generation_loop import JointNetGenerationLoop, sample_seed, shard_indices
from .jointnet_train_loop import JointNetTrainLoop, stage_of_iter
from .nonfinite_hook import NonFiniteLossError, NonFiniteLossHook
from .time_budget_hook import TrainTimeBudgetHook

__all__ = [
    'AtomicCheckpointHook', 'NonFiniteCheckpointError', 'TrainTimeBudgetHook', 'NonFiniteLossHook',
    'NonFiniteLossError', 'JointNetTrainLoop', 'JointNetGenerationLoop',
    'stage_of_iter', 'sample_seed', 'shard_indices'
]
