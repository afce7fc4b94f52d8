"""Test-only hooks for tests/test_fault_injection/test_checkpoints.py (imported by the training subprocess through
``custom_imports`` with this folder on PYTHONPATH, or in process).

* ``LossRecorderHook``: appends ``{"iter": n, "loss": repr(float)}`` lines to a file after every iteration (full
  precision, unlike the log's 4 digits), before the checkpoint hook runs.
* ``CheckpointFaultHook``: reads ``CKPT_FAULT=<mode>:<iter>`` from the environment and SIGKILLs the process
  - ``during_write``: while the checkpoint of iteration ``iter`` is being written (half of its bytes are on disk);
  - ``after_write``: right after the checkpoint hook has finished with iteration ``iter``.
* ``PoisonWeightsHook``: writes NaN into part of one parameter after iteration ``iter`` (before the checkpoint).
"""
import io
import json
import os
import signal

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module(force=True)
class LossRecorderHook(Hook):
    priority = 'HIGHEST'

    def __init__(self, path: str) -> None:
        self.path = path

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        with open(self.path, 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, loss=repr(float(outputs['loss'])))) + '\n')


@HOOKS.register_module(force=True)
class CheckpointFaultHook(Hook):
    priority = 'LOWEST'  # after AtomicCheckpointHook (VERY_LOW)

    def __init__(self) -> None:
        spec = os.environ.get('CKPT_FAULT', '')
        self.mode, _, it = spec.partition(':')
        self.iter = int(it) if it else None
        if self.mode not in ('', 'during_write', 'after_write'):
            raise ValueError(f'CKPT_FAULT: unknown mode {self.mode!r}')

    def before_run(self, runner) -> None:
        if self.mode != 'during_write':
            return
        import mmengine.runner.runner as runner_module  # Runner.save_checkpoint writes through this name
        real_save, kill_iter = runner_module.save_checkpoint, self.iter

        def partial_save(checkpoint, filename, **kwargs):
            if checkpoint['meta'].get('iter') != kill_iter:
                return real_save(checkpoint, filename, **kwargs)
            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            data = buf.getvalue()
            with open(filename, 'wb') as f:
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
            _kill_self()

        runner_module.save_checkpoint = partial_save

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.mode == 'after_write' and runner.iter + 1 == self.iter:
            _kill_self()


@HOOKS.register_module(force=True)
class PoisonWeightsHook(Hook):
    priority = 'LOW'  # after the loss check, before the checkpoint hook

    def __init__(self, iter: int, num: int = 3) -> None:
        self.iter, self.num = iter, num

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 != self.iter:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        name, param = next((n, p) for n, p in model.named_parameters() if p.numel() >= self.num)
        with torch.no_grad():
            param.view(-1)[:self.num] = float('nan')
        self.poisoned = name
