"""Stop training at the first non-finite loss, before anything (a checkpoint) is written from the broken weights."""
import math
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/Inf loss."""


def nonfinite_terms(outputs: Optional[Dict]) -> Dict[str, float]:
    """The loss terms (keys containing ``loss``) of ``train_step``'s log dict that are NaN or Inf."""
    bad = {}
    for key, value in (outputs or {}).items():
        if 'loss' not in key:
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() == 0:
                continue
            finite = bool(torch.isfinite(value.detach()).all())
            shown = float(value.detach().float().mean())
        elif isinstance(value, (int, float)):
            finite, shown = math.isfinite(value), float(value)
        else:
            continue
        if not finite:
            bad[key] = shown
    return bad


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` when a loss term of a training iteration is NaN or Inf.

    ``train_step`` returns the parsed loss terms (segmentors: ``decode.loss_ce``, ...; SAR-JointNet: its
    stage's diffusion losses) and the total ``loss``; every term whose name contains ``loss`` is checked after each
    iteration. The error names the iteration (1-based, as in the log) and the terms, so the process exits non-zero.
    The hook runs with ``'HIGHEST'`` priority, before ``CheckpointHook`` and ``LoggerHook`` in ``after_train_iter``:
    no checkpoint is written from that iteration on. Under distributed training the processes agree (one
    all-reduce of a flag per iteration), so all of them stop at the same iteration instead of waiting for each
    other.

    Args:
        check_interval (int): check every ``check_interval`` iterations (1: every one). Defaults to 1.
    """

    priority = 'HIGHEST'

    def __init__(self, check_interval: int = 1) -> None:
        if int(check_interval) < 1:
            raise ValueError(f'NonFiniteLossHook: check_interval must be >= 1, got {check_interval}')
        self.check_interval = int(check_interval)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.check_interval) and not self.is_last_train_iter(runner):
            return
        bad = nonfinite_terms(outputs)
        bad = self._agree(bad)
        if not bad:
            return
        iteration = runner.iter + 1
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        components = [k for k in bad if k != 'loss']
        msg = (f'non-finite loss at iteration {iteration}: {terms}'
               + (f' (first term: {components[0]})' if components else '')
               + '. Training stopped; no checkpoint is written from this iteration on. Lower the learning rate '
               '(optim_wrapper.optimizer.lr), enable gradient clipping (optim_wrapper.clip_grad) or check the '
               'data of this iteration.')
        runner.logger.error(msg)
        raise NonFiniteLossError(msg)

    @staticmethod
    def _agree(bad: Dict[str, float]) -> Dict[str, float]:
        """Under distributed training, any process's non-finite loss stops every process."""
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return bad
        backend = dist.get_backend()
        device = torch.device('cuda', torch.cuda.current_device()) if backend == 'nccl' else torch.device('cpu')
        flag = torch.tensor([1.0 if bad else 0.0], device=device)
        dist.all_reduce(flag)
        if float(flag.item()) > 0 and not bad:
            return {'loss (on another process)': float('nan')}
        return bad


__all__: List[str] = ['NonFiniteLossHook', 'NonFiniteLossError', 'nonfinite_terms']
