import os.path as osp
import time
from types import SimpleNamespace

import pytest
import torch

from projects.sar_oilspill.engine.time_budget_hook import TrainTimeBudgetHook


class _Runner:
    def __init__(self, work_dir):
        self.work_dir = str(work_dir)
        self.iter = 0
        self.train_loop = SimpleNamespace(stop_training=False)
        self.message_hub = SimpleNamespace(update_info=lambda k, v: setattr(self, 'spent', v))
        self.logger = SimpleNamespace(info=lambda msg: None)
        self.saved = []
        self.model = torch.nn.Linear(2, 2)

    def save_checkpoint(self, out_dir, name, **kw):
        # the hook writes through a temporary name, renamed once complete (AtomicCheckpointHook's helper)
        torch.save(dict(meta=kw.pop('meta')), osp.join(out_dir, name))
        self.saved.append((out_dir, name, kw))


def test_stops_after_budget_and_writes_checkpoint(tmp_path):
    hook, runner = TrainTimeBudgetHook(budget_s=0.05), _Runner(tmp_path)
    iters = 0
    while not runner.train_loop.stop_training and iters < 100:
        hook.before_train_iter(runner, iters)
        time.sleep(0.02)
        hook.after_train_iter(runner, iters)
        runner.iter += 1
        iters += 1
    assert 3 <= iters <= 4  # 0.02 s per iteration, 0.05 s budget
    assert runner.spent >= 0.05
    hook.after_train(runner)
    ((out_dir, tmp_name, kw), ) = runner.saved
    assert out_dir == str(tmp_path) and tmp_name.startswith(f'iter_{iters}.pth.tmp-')
    assert kw == dict(save_optimizer=False, save_param_scheduler=False, by_epoch=False)
    assert 'rng_states' in torch.load(osp.join(tmp_path, f'iter_{iters}.pth'), weights_only=False)['meta']
    assert not osp.exists(osp.join(tmp_path, tmp_name))
    assert open(osp.join(tmp_path, 'last_checkpoint')).read() == osp.join(str(tmp_path), f'iter_{iters}.pth')


def test_time_outside_iterations_not_counted(tmp_path):
    hook, runner = TrainTimeBudgetHook(budget_s=0.05), _Runner(tmp_path)
    for i in range(3):
        hook.before_train_iter(runner, i)
        hook.after_train_iter(runner, i)
        time.sleep(0.03)  # e.g. validation between iterations
    assert not runner.train_loop.stop_training
    hook.after_train(runner)
    assert runner.saved == []


def test_bad_budget():
    with pytest.raises(ValueError, match='budget_s'):
        TrainTimeBudgetHook(0)
