"""Checkpoint loading for the tools: weights-only, finite, and fitting the model.

* :func:`allow_mmengine_checkpoint_types` lets torch >= 2.6 (``weights_only=True`` by default) read the checkpoints
  mmengine 0.10.7 writes (its message hub holds ``HistoryBuffer`` objects with numpy arrays and scalars) and
  NVlabs/timm ``.pth.tar`` files (``argparse.Namespace`` training arguments). Only those data types are allow-listed;
  ``builtins.getattr`` is not (with it a pickle can reach any attribute of any module, e.g. ``builtins.eval``, and
  run code). mmengine pickles the ``HistoryBuffer`` statistics methods as ``getattr(HistoryBuffer, 'mean')``, so
  the name ``builtins.getattr`` is mapped to :func:`_history_buffer_getattr`, which answers exactly those look-ups
  and refuses every other one.
* :func:`load_checkpoint_file` reads a file weights-only; a missing, empty, unreadable or unsafe file raises
  :class:`CheckpointError` naming it (never torch's advice to set ``weights_only=False``).
* :func:`check_finite`, :func:`check_state_dict_fit` and :func:`check_num_classes` refuse NaN/Inf weights, missing,
  unexpected or mis-shaped keys (listed; ``allow_partial`` turns that into a warning) and a head whose
  ``num_classes`` differs from the dataset's classes.
* :func:`load_model_checkpoint` does all of it and loads the weights.
"""
import argparse
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch


class CheckpointError(ValueError):
    """A checkpoint that must not be used (unreadable, unsafe, non-finite, or not fitting the model)."""


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')
_UNSAFE_MARKERS = ('Unsupported global', 'Trying to call reduce', 'Can only build', 'Can only create new object',
                   'is blocked', 'not allowed in a checkpoint', 'Unsupported class')


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling: only ``HistoryBuffer.<statistics method>``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = set(_HISTORY_BUFFER_METHODS) | set(getattr(HistoryBuffer, '_statistics_methods', {}))
    if isinstance(obj, type) and issubclass(obj, HistoryBuffer) and isinstance(name, str) and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint (only the '
                                 f'statistics methods of mmengine HistoryBuffer: {sorted(allowed)})')


def _checkpoint_safe_globals() -> list:
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'int16',
                                                  'int8', 'uint8', 'uint16', 'uint32', 'uint64', 'bool')]
    names = [(_history_buffer_getattr, 'builtins.getattr')]
    # numpy 1.x writes numpy.core.multiarray.*, numpy 2.x numpy._core.multiarray.*: accept both names.
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names += [(multiarray.scalar, f'{mod}.scalar'), (multiarray._reconstruct, f'{mod}._reconstruct')]
    return [HistoryBuffer, np.ndarray, np.dtype, argparse.Namespace, *dtype_classes, *names]


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list (process-wide) the data types of mmengine and NVlabs checkpoints for weights-only loading."""
    torch.serialization.add_safe_globals(_checkpoint_safe_globals())


def load_checkpoint_file(path: str, map_location='cpu', what: str = 'checkpoint'):
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError (also for a missing file): naming ``path`` and what is wrong (missing, 0 bytes, not a
            PyTorch file, or objects that are not plain weights, i.e. a pickle that could run code).
    """
    path = str(path)
    if not osp.isfile(osp.expanduser(path)):
        raise CheckpointError(f'{what} {path!r} does not exist')
    path = osp.expanduser(path)
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f'{what} {path!r} is empty (0 bytes): not a checkpoint (an interrupted save or copy?)')
    allow_mmengine_checkpoint_types()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        text = str(e)
        if any(m in text for m in _UNSAFE_MARKERS):
            found = re.search(r'(Unsupported global: GLOBAL \S+|Trying to call reduce for unrecognized function '
                              r'[^\n]+?(?= which|\.|\n|$)|getattr\([^\n]*?\) is not allowed|Can only [^\n.]+|'
                              r'GLOBAL \S+ whose module \S+ is blocked)', text)
            reason = found.group(0) if found else text.splitlines()[0][:300]
            raise CheckpointError(
                f'{what} {path!r} refused: it holds objects that are not plain weights ({reason}). Unpickling them '
                'could run arbitrary code; this project only loads tensors, numbers, strings, containers, numpy '
                'arrays and the mmengine/timm metadata types. Re-save the weights from a trusted environment '
                '(torch.save of the state_dict).') from None
        first = text.strip().splitlines()[0][:300] if text.strip() else type(e).__name__
        raise CheckpointError(f'{what} {path!r} ({size} bytes) is not a readable PyTorch checkpoint: {first}. '
                              'Is the file complete (an interrupted download or save?) and a .pth written by '
                              'torch.save?') from None


def get_state_dict(checkpoint, path: str = '') -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of a checkpoint: ``checkpoint['state_dict']`` (mmengine), ``['model']`` or a bare state dict;
    a leading ``module.`` (DDP) is stripped."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'checkpoint {path!r} holds a {type(checkpoint).__name__}, expected a dict of weights')
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            state = checkpoint[key]
            break
    tensors = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items()
                          if isinstance(v, torch.Tensor))
    if not tensors:
        raise CheckpointError(f'checkpoint {path!r} holds no tensors (keys: {list(checkpoint)[:10]})')
    return tensors


def _listing(keys: Sequence[str], limit: int = 20) -> str:
    keys = list(keys)
    return '[' + ', '.join(keys[:limit]) + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '') + ']'


def nonfinite_keys(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """Keys of floating-point tensors holding NaN or Inf."""
    bad = []
    for k, v in state_dict.items():
        if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex()) and v.numel():
            if not bool(torch.isfinite(v).all()):
                bad.append(k)
    return bad


def check_finite(state_dict: Dict[str, torch.Tensor], path: str = '', what: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointError` when any tensor holds NaN/Inf (a diverged run), listing the keys."""
    bad = nonfinite_keys(state_dict)
    if bad:
        raise CheckpointError(f'{what} {path!r}: {len(bad)} of {len(state_dict)} tensors hold NaN/Inf values '
                              f'{_listing(bad, 10)}; the run that wrote it diverged. Refusing to use it.')


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP/DataParallel wrappers and test-time-augmentation models (as mmengine loads them)."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def state_dict_mismatch(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor]):
    """``(missing, unexpected, wrong_shape)`` between ``model`` and ``state_dict``; ``num_batches_tracked`` that
    a checkpoint lacks is not counted (as mmengine)."""
    own = unwrap_model(model).state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f'{k}: {tuple(v.shape)} != {tuple(own[k].shape)}' for k, v in state_dict.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    return missing, unexpected, wrong


def check_state_dict_fit(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], path: str = '',
                         allow_partial: bool = False, logger=None) -> None:
    """Every weight of the model must be in the checkpoint with its shape, and nothing else.

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped keys; with ``allow_partial`` the list is a
            warning instead (the missing and mis-shaped weights stay as initialised).
    """
    missing, unexpected, wrong = state_dict_mismatch(model, state_dict)
    if not (missing or unexpected or wrong):
        return
    parts = [f'{len(keys)} {what} {_listing(keys)}' for what, keys in (
        ('missing keys (in the model, not in the checkpoint)', missing),
        ('unexpected keys (in the checkpoint, not in the model)', unexpected),
        ('mis-shaped keys (checkpoint != model)', wrong)) if keys]
    msg = (f'checkpoint {path!r} does not fit the model {type(unwrap_model(model)).__name__}: ' + '; '.join(parts))
    if not allow_partial:
        raise CheckpointError(msg + '. Is it the checkpoint of this config? (--allow-partial loads the matching '
                              'weights and leaves the rest as initialised)')
    from mmengine.logging import print_log
    import logging
    print_log('--allow-partial: ' + msg + '; these weights stay as initialised', logger=logger or 'current',
              level=logging.WARNING)


def model_num_classes(model: torch.nn.Module) -> Dict[str, int]:
    """``num_classes`` of the model's heads: ``decode_head``, ``auxiliary_head`` (one or a list) or the model's
    own (SAR-JointNet)."""
    model = unwrap_model(model)
    found = {}
    if getattr(model, 'decode_head', None) is not None and hasattr(model.decode_head, 'num_classes'):
        found['decode_head.num_classes'] = int(model.decode_head.num_classes)
    aux = getattr(model, 'auxiliary_head', None)
    if aux is not None:
        heads = list(aux) if isinstance(aux, torch.nn.ModuleList) else [aux]
        for i, head in enumerate(heads):
            if hasattr(head, 'num_classes'):
                name = 'auxiliary_head' if len(heads) == 1 else f'auxiliary_head[{i}]'
                found[f'{name}.num_classes'] = int(head.num_classes)
    if not found and isinstance(getattr(model, 'num_classes', None), int):
        found['model.num_classes'] = int(model.num_classes)
    return found


def dataset_classes_from_cfg(dataset_cfg) -> Optional[List[str]]:
    """Class names of a dataset config without building it: ``metainfo.classes`` or the class's ``METAINFO``
    (wrappers with ``dataset``/``datasets`` are followed). ``None`` when they cannot be told."""
    if not dataset_cfg or not isinstance(dataset_cfg, dict):
        return None
    meta = dataset_cfg.get('metainfo') or {}
    if isinstance(meta, dict) and meta.get('classes'):
        return list(meta['classes'])
    from mmseg.registry import DATASETS
    ds_type = dataset_cfg.get('type')
    ds_cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    classes = (getattr(ds_cls, 'METAINFO', None) or {}).get('classes') if ds_cls is not None else None
    if classes:
        return list(classes)
    inner = dataset_cfg.get('dataset') or (dataset_cfg.get('datasets') or [None])[0]
    if isinstance(dataset_cfg.get('real'), dict) and inner is None:
        inner = dataset_cfg['real']
    return dataset_classes_from_cfg(inner)


def check_num_classes(model: torch.nn.Module, classes: Optional[Iterable[str]], source: str) -> None:
    """Raise :class:`CheckpointError` when a head's ``num_classes`` differs from the number of dataset classes."""
    if classes is None:
        return
    classes = list(classes)
    heads = model_num_classes(model)
    bad = {k: v for k, v in heads.items() if v != len(classes)}
    if bad:
        raise CheckpointError(
            'num_classes mismatch: the model has ' + ', '.join(f'{k}={v}' for k, v in bad.items())
            + f' but {source} has {len(classes)} classes {classes}. Set ' + ' and '.join(
                'model.' + k if not k.startswith('model.') else k for k in bad)
            + ' in the config to the number of dataset classes (and use a checkpoint trained with it).')


def load_model_checkpoint(model: torch.nn.Module, path: str, allow_partial: bool = False, map_location='cpu',
                          logger=None) -> dict:
    """Load ``path`` into ``model`` after the checks: readable and safe, finite, fitting (or ``allow_partial``).

    Returns:
        dict: the checkpoint (``meta`` etc.).
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    checkpoint = load_checkpoint_file(path, map_location=map_location)
    state = get_state_dict(checkpoint, path)
    check_finite(state, path)
    check_state_dict_fit(model, state, path, allow_partial=allow_partial, logger=logger)
    if 'state_dict' not in checkpoint:
        checkpoint = dict(state_dict=state, **{k: v for k, v in checkpoint.items() if k != 'model'})
    _load_checkpoint_to_model(unwrap_model(model), checkpoint, strict=not allow_partial)
    return checkpoint


def validate_checkpoint_for_model(model: torch.nn.Module, path: str, allow_partial: bool = False,
                                  logger=None) -> dict:
    """The checks of :func:`load_model_checkpoint` without loading (the caller loads, e.g. ``Runner``)."""
    checkpoint = load_checkpoint_file(path)
    state = get_state_dict(checkpoint, path)
    check_finite(state, path)
    check_state_dict_fit(model, state, path, allow_partial=allow_partial, logger=logger)
    return checkpoint
