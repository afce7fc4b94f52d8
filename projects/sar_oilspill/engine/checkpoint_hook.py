"""Crash-safe checkpoints that resume exactly.

mmengine 0.10.7's ``CheckpointHook`` writes ``iter_<n>.pth`` in place, deletes the checkpoints beyond
``max_keep_ckpts`` *before* writing the new one and writes ``last_checkpoint`` in place last. A process killed
while a checkpoint is written (``max_keep_ckpts=1``, the CPU configs) leaves a truncated file, no previous one and
``last_checkpoint`` naming a deleted file: ``--resume`` fails and the run is lost. :class:`AtomicCheckpointHook`
(the default of every config in ``configs/``) instead

* writes each checkpoint (periodic, best, published) to ``<name>.tmp-<pid>``, fsyncs it and renames it over
  ``<name>`` (a reader sees the old complete file or the new complete file, never a partial one);
* writes ``last_checkpoint`` the same way, after the checkpoint is complete;
* deletes older checkpoints (``max_keep_ckpts``, the previous best) only after that. The checkpoint lists the
  not yet deleted ones in its ``keep_ckpt_ids``, so a run killed before deleting them deletes them on resume;
* refuses to write a checkpoint whose model state holds NaN/inf (:class:`NonFiniteCheckpointError`, naming the
  iteration and the tensors; nothing is written or deleted);
* stores the random-number generator states (python ``random``, numpy, torch CPU and CUDA, one set per process)
  in ``meta['rng_states']`` and restores them on ``--resume`` right before the first batch after the checkpoint
  is fetched (after mmengine re-seeds the run and after ``IterBasedTrainLoop`` replays the data loader to skip the
  batches already trained; the replay also puts the sampler back where it was). Validation leaves the training's
  generator states as they were before it, so a run resumed from a checkpoint followed by a validation computes
  the same losses as the uninterrupted run.

:func:`save_checkpoint_atomic` and :func:`write_last_checkpoint` do the same for other writers
(``TrainTimeBudgetHook``). Atomic renames need a local directory: a remote ``out_dir`` is refused.
"""
import os
import os.path as osp
import random
import re
from collections import deque
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import HOOKS

from ..utils.atomic import atomic_write

RNG_KEY = 'rng_states'
_TMP_RE = re.compile(r'^(?:.+\.pth|last_checkpoint)\.tmp-(\d+)$')


class NonFiniteCheckpointError(RuntimeError):
    """A checkpoint was not written because the model state holds NaN or inf values."""


# ---------------------------------------------------------------------------------------------- file helpers
# Every file is written through ``utils.atomic.atomic_write``: ``<name>.tmp-<pid>``, fsync, rename, fsync of the
# folder.


def write_last_checkpoint(work_dir: str, ckpt_path: str) -> str:
    """Point ``<work_dir>/last_checkpoint`` (what ``--resume`` reads) at ``ckpt_path``, atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            f.write(ckpt_path)

    return atomic_write(osp.join(work_dir, 'last_checkpoint'), _write)


def remove_stale_temporaries(directory: str, logger=None) -> List[str]:
    """Delete ``*.pth.tmp-<pid>`` / ``last_checkpoint.tmp-<pid>`` left by a killed writer (its process is gone)."""
    removed = []
    if not osp.isdir(directory):
        return removed
    for name in sorted(os.listdir(directory)):
        m = _TMP_RE.match(name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        os.remove(osp.join(directory, name))
        removed.append(name)
        if logger is not None:
            logger.warning(f'removed {osp.join(directory, name)}, a partial checkpoint of an interrupted run')
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_local(out_dir: str, backend_args: Optional[dict] = None) -> None:
    backend = get_file_backend(out_dir, backend_args=backend_args)
    if not isinstance(backend, LocalBackend):
        raise ValueError(f'AtomicCheckpointHook: checkpoints are written through a temporary file and a rename, '
                         f'which needs a local directory; out_dir={out_dir!r} uses {type(backend).__name__}')


# ---------------------------------------------------------------------------------------------- RNG states
def get_rng_state() -> Dict:
    """This process's generator states, as built-in types and tensors (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(python=random.getstate(), numpy=(kind, keys.tolist(), int(pos), int(has_gauss), float(cached)),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    random.setstate(_as_tuple(state['python']))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        if len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state['cuda'])
        else:
            raise RuntimeError(f'the checkpoint holds CUDA generator states of {len(state["cuda"])} devices, this '
                               f'process sees {torch.cuda.device_count()}')


def _as_tuple(obj):
    return tuple(_as_tuple(x) for x in obj) if isinstance(obj, (list, tuple)) else obj


def _sampler_info(runner) -> Dict:
    loader = getattr(runner, '_train_dataloader', None)
    sampler = getattr(loader, 'sampler', None)
    return dict(type=type(sampler).__name__, seed=getattr(sampler, 'seed', None))


# ---------------------------------------------------------------------------------------------- saving
def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def nonfinite_tensors(state_dict: Dict) -> List[Tuple[str, int, int]]:
    """``(name, non-finite elements, elements)`` of every floating-point tensor of ``state_dict`` with NaN/inf."""
    bad = []
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            n = int((~torch.isfinite(value.detach())).sum())
            if n:
                bad.append((name, n, value.numel()))
    return bad


def prepare_checkpoint_save(runner, filename: str, iteration: Optional[int] = None,
                            rng_state: Optional[Dict] = None) -> Dict:
    """Check the model state and gather every process's generator states (all processes must call this).

    Raises:
        NonFiniteCheckpointError: the model state of some process holds NaN/inf (raised in every process).

    Returns:
        The ``meta['rng_states']`` entry of the checkpoint.
    """
    state = _unwrap(runner.model).state_dict()
    floating = sum(1 for v in state.values() if isinstance(v, torch.Tensor) and v.is_floating_point())
    local = dict(rng=rng_state if rng_state is not None else get_rng_state(), bad=nonfinite_tensors(state))
    gathered = all_gather_object(local)
    bad = next((g['bad'] for g in gathered if g['bad']), None)
    if bad:
        iteration = runner.iter + 1 if iteration is None else iteration
        shown = ', '.join(f'{name} ({n} of {total} elements)' for name, n, total in bad[:10])
        more = f' and {len(bad) - 10} more' if len(bad) > 10 else ''
        raise NonFiniteCheckpointError(
            f'refusing to save checkpoint {filename} at iteration {iteration}: {len(bad)} of {floating} '
            f'floating-point tensors of the model state hold NaN/inf values: {shown}{more}. Nothing was written '
            'and no earlier checkpoint was removed.')
    return dict(world_size=get_world_size(), ranks=[g['rng'] for g in gathered], sampler=_sampler_info(runner))


def write_checkpoint_atomic(runner, out_dir: str, filename: str, meta: Optional[Dict] = None, **kwargs) -> str:
    """``runner.save_checkpoint(out_dir, filename, meta=meta, **kwargs)`` through ``<filename>.tmp-<pid>``, fsync
    and a rename (the main process writes; the others return at once). Returns the checkpoint's path."""
    path = osp.join(out_dir, filename)
    if not is_main_process():
        return path
    _check_local(out_dir, kwargs.get('backend_args'))
    os.makedirs(out_dir, exist_ok=True)

    def _write(tmp: str) -> None:
        runner.save_checkpoint(out_dir, osp.basename(tmp), meta=meta, **kwargs)
        if not osp.isfile(tmp):
            raise RuntimeError(f'runner.save_checkpoint wrote nothing to {tmp}')

    return atomic_write(path, _write)


def save_checkpoint_atomic(runner, out_dir: str, filename: str, meta: Optional[Dict] = None,
                           rng_state: Optional[Dict] = None, **kwargs) -> str:
    """Check, then atomically write, a checkpoint with the generator states (call it in every process).

    ``kwargs`` go to ``runner.save_checkpoint`` (``save_optimizer``, ``by_epoch``, ...). Does not touch
    ``last_checkpoint`` (see :func:`write_last_checkpoint`).
    """
    meta = dict(meta or {})
    meta[RNG_KEY] = prepare_checkpoint_save(runner, filename, meta.get('iter'), rng_state)
    return write_checkpoint_atomic(runner, out_dir, filename, meta=meta, **kwargs)


def _remove(backend, path: str) -> bool:
    if backend.isfile(path):
        backend.remove(path)
        return True
    if backend.isdir(path):  # deepspeed checkpoints are folders
        backend.rmtree(path)
        return True
    return False


class _RestoreRngBeforeBatch:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator``: passes the ``skip`` batches the loop replays on
    resume, then restores the generator states before fetching the next batch and puts the real iterator back."""

    def __init__(self, loop, skip: int, restore) -> None:
        self._loop, self._inner, self._skip, self._restore = loop, loop.dataloader_iterator, skip, restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
            return next(self._inner)
        self._loop.dataloader_iterator = self._inner
        self._restore()
        return next(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


# ---------------------------------------------------------------------------------------------- the hook
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with crash-safe writes and exact resume (module docstring).

    Args:
        resume_rng_states (bool): On ``--resume``, restore the generator states stored in the checkpoint.
            Defaults to True.
        **kwargs: :class:`mmengine.hooks.CheckpointHook`'s arguments.
    """

    def __init__(self, *args, resume_rng_states: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resume_rng_states = bool(resume_rng_states)
        self._loaded_rng: Optional[Dict] = None
        self._loaded_pos: Optional[Tuple[int, int]] = None
        self._pending_epoch_rng: Optional[Callable[[], None]] = None
        self._pre_val_rng: Optional[Dict] = None

    # ------------------------------------------------------------------ set-up and resume
    def before_train(self, runner) -> None:
        out_dir = runner.work_dir if self.out_dir is None else self.out_dir
        if self.file_client_args is not None:
            raise ValueError('AtomicCheckpointHook: file_client_args is not supported (local directories only)')
        _check_local(out_dir, self.backend_args)
        super().before_train(runner)
        if is_main_process():
            remove_stale_temporaries(self.out_dir, runner.logger)
            if osp.abspath(self.out_dir) != osp.abspath(runner.work_dir):
                remove_stale_temporaries(runner.work_dir, runner.logger)
        self._schedule_rng_restore(runner)

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        meta = checkpoint.get('meta') or {}
        self._loaded_rng = meta.get(RNG_KEY)
        self._loaded_pos = (meta.get('epoch'), meta.get('iter'))

    def _schedule_rng_restore(self, runner) -> None:
        saved, pos = self._loaded_rng, self._loaded_pos
        self._loaded_rng = self._loaded_pos = None
        loop = runner.train_loop
        resumed = pos is not None and pos == (loop.epoch, loop.iter) and (loop.iter > 0 or loop.epoch > 0)
        if not resumed or not self.resume_rng_states:
            return
        if saved is None:
            runner.logger.warning('the resumed checkpoint stores no random-number generator states (written by '
                                  'another hook); the resumed run draws other random numbers than the original')
            return
        if saved.get('world_size') != get_world_size():
            runner.logger.warning(f'the resumed checkpoint holds generator states of {saved.get("world_size")} '
                                  f'processes, this run has {get_world_size()}: they are not restored')
            return
        seed, saved_seed = _sampler_info(runner)['seed'], (saved.get('sampler') or {}).get('seed')
        if seed != saved_seed:
            runner.logger.warning(f'the train sampler\'s seed ({seed}) differs from the resumed checkpoint\'s '
                                  f'({saved_seed}): the data order differs from the original run (set '
                                  'randomness.seed in the config)')
        state = saved['ranks'][get_rank()]

        def restore() -> None:
            set_rng_state(state)
            runner.logger.info('restored the random-number generator states saved at epoch '
                               f'{loop.epoch}, iteration {loop.iter}')

        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreRngBeforeBatch(loop, loop.iter, restore)
        elif isinstance(loop, EpochBasedTrainLoop):
            self._pending_epoch_rng = restore
        else:
            runner.logger.warning(f'AtomicCheckpointHook: generator states are not restored for a '
                                  f'{type(loop).__name__}')

    def before_train_epoch(self, runner) -> None:
        if self._pending_epoch_rng is not None:  # epoch-based loop: the epoch's data iterator is made next
            restore, self._pending_epoch_rng = self._pending_epoch_rng, None
            restore()

    # ------------------------------------------------------------------ validation leaves training's RNG alone
    def before_val(self, runner) -> None:
        self._pre_val_rng = get_rng_state()

    def after_val(self, runner) -> None:
        if self._pre_val_rng is not None:
            set_rng_state(self._pre_val_rng)
            self._pre_val_rng = None

    # ------------------------------------------------------------------ saving
    def _save_checkpoint_with_step(self, runner, step, meta):
        ckpt_filename = self.filename_tmpl.format(step)
        meta = dict(meta)
        meta[RNG_KEY] = prepare_checkpoint_save(runner, ckpt_filename, meta.get('iter'), self._pre_val_rng)

        to_delete: List = []
        kept = list(self.keep_ckpt_ids) if self.max_keep_ckpts > 0 else []
        if self.max_keep_ckpts > 0 and not (kept and kept[-1] == step):
            ids = kept + [step]
            to_delete = ids[:-self.max_keep_ckpts]
            kept = ids[-self.max_keep_ckpts:]
            # the checkpoint lists the ones not deleted yet: a run killed before deleting them deletes them on resume
            runner.message_hub.update_info('keep_ckpt_ids', ids)

        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        write_checkpoint_atomic(runner, self.out_dir, ckpt_filename, meta=meta,
                                save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if self.max_keep_ckpts > 0:
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        for old in to_delete:
            _remove(self.file_backend, self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old)))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's logic, except that the previous best checkpoint is deleted after the new one is written."""
        if not self.save_best:
            return
        if self.by_epoch:
            ckpt_filename = self.filename_tmpl.format(runner.epoch)
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            ckpt_filename = self.filename_tmpl.format(runner.iter)
            cur_type, cur_time = 'iter', runner.iter
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])

        best_ckpt_updated = False
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            key_score = metrics[key_indicator]
            if len(self.key_indicators) == 1:
                best_score_key, runtime_best_ckpt_key = 'best_score', 'best_ckpt'
                best_ckpt_path = self.best_ckpt_path
            else:
                best_score_key = f'best_score_{key_indicator}'
                runtime_best_ckpt_key = f'best_ckpt_{key_indicator}'
                best_ckpt_path = self.best_ckpt_path_dict[key_indicator]
            if best_score_key not in runner.message_hub.runtime_info:
                best_score = self.init_value_map[rule]
            else:
                best_score = runner.message_hub.get_info(best_score_key)
            if key_score is None or not self.is_better_than[key_indicator](key_score, best_score):
                continue

            best_ckpt_name = f'best_{key_indicator}_{ckpt_filename}'.replace('/', '_')
            new_path = self.file_backend.join_path(self.out_dir, best_ckpt_name)
            best_meta = dict(meta)
            best_meta[RNG_KEY] = prepare_checkpoint_save(runner, best_ckpt_name, runner.iter, self._pre_val_rng)
            best_ckpt_updated = True
            runner.message_hub.update_info(best_score_key, key_score)
            if len(self.key_indicators) == 1:
                self.best_ckpt_path = new_path
            else:
                self.best_ckpt_path_dict[key_indicator] = new_path
            runner.message_hub.update_info(runtime_best_ckpt_key, new_path)
            write_checkpoint_atomic(runner, self.out_dir, best_ckpt_name, meta=best_meta, save_optimizer=False,
                                    save_param_scheduler=False, by_epoch=False, backend_args=self.backend_args)
            if best_ckpt_path and best_ckpt_path != new_path and is_main_process():
                if _remove(self.file_backend, best_ckpt_path):
                    runner.logger.info(f'The previous best checkpoint {best_ckpt_path} is removed')
            runner.logger.info(f'The best checkpoint with {key_score:0.4f} {key_indicator} at {cur_time} '
                               f'{cur_type} is saved to {best_ckpt_name}.')

        # as mmengine: save the last checkpoint again so that it records the new best checkpoint
        if best_ckpt_updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, cur_time, meta)

    def _publish_model(self, runner, ckpt_path: str) -> None:
        if not is_main_process():
            return
        import hashlib
        import pickle

        from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
        checkpoint = _load_checkpoint(ckpt_path)
        removed = [key for key in list(checkpoint) if key not in self.published_keys]
        for key in removed:
            checkpoint.pop(key)
        if removed:
            runner.logger.info(f'Key {removed} will be removed because they are not found in published_keys. If '
                               f'you want to keep them, please set `{removed}` in published_keys')
        sha = hashlib.sha256(pickle.dumps(checkpoint)).hexdigest()
        final_path = osp.splitext(ckpt_path)[0] + f'-{sha[:8]}.pth'

        atomic_write(final_path, lambda tmp: save_checkpoint(checkpoint, tmp))
        runner.logger.info(f'The checkpoint ({ckpt_path}) is published to {final_path}.')
