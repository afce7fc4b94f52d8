"""Stop training after a wall-clock budget (fair CPU comparisons of models of different speed)."""
import time

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .checkpoint_hook import save_checkpoint_atomic, write_last_checkpoint


@HOOKS.register_module()
class TrainTimeBudgetHook(Hook):
    """Stop an iteration-based training run once ``budget_s`` seconds of training have passed.

    The clock starts at the first training iteration (model building and data loading set-up are not counted)
    and validation time is excluded. When the budget is spent the loop stops after the current iteration, a
    checkpoint ``iter_<n>.pth`` is written and ``last_checkpoint`` points to it, so ``tools/test.py`` can evaluate
    what was learnt in the budget. Both are written atomically (temporary file, fsync, rename; see
    :mod:`.checkpoint_hook`), and a model state with NaN/inf is refused.

    Args:
        budget_s: Training time budget in seconds.
    """

    priority = 'LOW'

    def __init__(self, budget_s: float) -> None:
        if budget_s <= 0:
            raise ValueError(f'TrainTimeBudgetHook: budget_s must be > 0, got {budget_s}')
        self.budget_s = float(budget_s)
        self._spent = 0.0
        self._t0 = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._spent += time.perf_counter() - self._t0
        runner.message_hub.update_info('train_time_s', self._spent)
        if self._spent >= self.budget_s and not runner.train_loop.stop_training:
            runner.logger.info(f'training time budget of {self.budget_s:.0f} s spent after {runner.iter + 1} '
                               'iterations; stopping')
            runner.train_loop.stop_training = True

    def after_train(self, runner) -> None:
        if runner.train_loop.stop_training:
            name = f'iter_{runner.iter}.pth'
            path = save_checkpoint_atomic(runner, runner.work_dir, name, save_optimizer=False,
                                          save_param_scheduler=False, by_epoch=False)
            if is_main_process():
                write_last_checkpoint(runner.work_dir, path)
