"""Reading MambaVision weights: NVlabs' ``.pth.tar`` files, converted backbone files and segmentor checkpoints.

The backbone uses NVlabs' parameter names, so no key is renamed. What differs from file to file is where the
weights sit and what surrounds them; the key handling here is the one place that knows it:

* the weights dict: under ``state_dict`` (NVlabs/timm ``.pth.tar``, mmengine), ``model``, or the file itself
  (:data:`WEIGHT_KEYS`); ``state_dict_ema`` (the EMA copy) when asked for by name;
* ``module.`` (DataParallel) in front of the keys: stripped;
* ``backbone.`` in front of every key of a segmentor checkpoint (or any ``prefix`` given): kept and stripped;
* the ImageNet classifier ``norm.*`` / ``head.*`` (:data:`CLASSIFIER_PREFIXES`): not part of the backbone.

Used by :class:`~.mambavision.MambaVision` (``init_cfg=dict(type='Pretrained', ...)``) and by
``tools/model_converters/mambavision_nvlabs_to_mmseg.py``. The release URLs and the offline weights folder are
:mod:`.pretrained`'s.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from ...utils.checkpoint_compat import allow_mmengine_checkpoint_types, check_finite, load_checkpoint_file
from .pretrained import NVLABS_CHECKPOINTS, WEIGHTS_DIR_ENV

#: Where a checkpoint keeps its weights, in the order they are looked for.
WEIGHT_KEYS = ('state_dict', 'model')
#: Checkpoint entries of the ImageNet classifier that the backbone does not have.
CLASSIFIER_PREFIXES = ('norm.', 'head.')
#: The backbone's encoder entries (the stem and the four levels): they must match exactly.
ENCODER_PREFIXES = ('patch_embed.', 'levels.')


def nvlabs_weights(ckpt: Mapping, key: Optional[str] = None, source: str = '') -> 'OrderedDict[str, Tensor]':
    """The tensors of a loaded checkpoint under NVlabs' names.

    Args:
        ckpt: The loaded checkpoint (a dict).
        key: Take the weights from ``ckpt[key]`` (e.g. ``'state_dict_ema'``); a KeyError listing the top-level
            keys when it is absent. None: the first of :data:`WEIGHT_KEYS` holding a dict, else ``ckpt`` itself.
        source: The file, for messages.

    Returns:
        The tensor entries (others dropped), ``module.`` stripped.
    """
    if key is not None:
        if key not in ckpt:
            raise KeyError(f'{source!r} has no {key!r}; top-level keys: {sorted(ckpt)}')
        ckpt = ckpt[key]
    else:
        for name in WEIGHT_KEYS:
            if name in ckpt and isinstance(ckpt[name], dict):
                ckpt = ckpt[name]
                break
    return OrderedDict((k[7:] if k.startswith('module.') else k, v)
                       for k, v in ckpt.items() if isinstance(v, Tensor))


def load_nvlabs_state_dict(path: str, prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """Read the weights of an NVlabs MambaVision checkpoint (or a converted/segmentor one).

    Accepts ``{'state_dict': ...}`` (NVlabs/timm ``.pth.tar``, mmengine), ``{'model': ...}`` or
    a bare state dict. Strips ``module.``; strips ``prefix`` (or ``backbone.`` when every key
    has it). A local file is read with ``torch.load(weights_only=True)`` by
    :func:`~projects.sar_oilspill.utils.checkpoint_compat.load_checkpoint_file` (the ``argparse.Namespace``
    of timm training arguments and numpy scalars allowed; an empty, unreadable or unsafe file is a
    ``CheckpointError`` naming it).

    Args:
        path (str): local path or URL understood by mmengine's ``CheckpointLoader``.
        prefix (str, optional): key prefix to keep and strip, e.g. ``'backbone.'``.

    Returns:
        dict[str, Tensor]: weights with NVlabs names (``norm.``/``head.`` kept).
    """
    if '://' in str(path):  # URLs (mmengine's loaders), weights-only with the same allow-list
        allow_mmengine_checkpoint_types()
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    else:
        ckpt = load_checkpoint_file(str(path), map_location='cpu', what='MambaVision pretrained checkpoint')
    if not isinstance(ckpt, dict):
        raise TypeError(f'MambaVision: {path!r} holds a {type(ckpt)}, expected a dict')
    state_dict = nvlabs_weights(ckpt, source=str(path))
    if (prefix is None and any(k.startswith('backbone.') for k in state_dict)
            and not any(k.startswith(ENCODER_PREFIXES) for k in state_dict)):
        prefix = 'backbone.'  # a segmentor checkpoint
    if prefix:
        state_dict = OrderedDict(
            (k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
        if not state_dict:
            raise KeyError(f'MambaVision: no key of {path!r} starts with prefix {prefix!r}')
    return state_dict


def load_pretrained(path: str, arch_name: Optional[str], prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """The weights of ``init_cfg=dict(type='Pretrained', checkpoint=path[, prefix=...])``, checked finite.

    Raises:
        FileNotFoundError: a local file that does not exist (the message names the NVlabs release of ``arch_name``).
        CheckpointError (a ValueError): unreadable or unsafe file, or tensors with NaN/Inf.
    """
    if '://' not in str(path) and not osp.isfile(osp.expanduser(str(path))):
        hint = NVLABS_CHECKPOINTS.get(arch_name or '', None)
        raise FileNotFoundError(
            f'MambaVision(arch={arch_name!r}): pretrained checkpoint {path!r} does not '
            'exist. ' + (f'Download the NVlabs ImageNet weights from {hint} and pass their path '
                         '(--cfg-options model.backbone.init_cfg.checkpoint=PATH), or leave the URL in '
                         f'the config and put the file in ${WEIGHTS_DIR_ENV}, ' if hint else '')
            + 'or set init_cfg=None to train from scratch.')
    state_dict = load_nvlabs_state_dict(path, prefix=prefix)
    check_finite(state_dict, str(path), what=f'MambaVision(arch={arch_name!r}) pretrained checkpoint')
    return state_dict


def compare_shapes(expected: Mapping[str, Sequence[int]], got: Mapping[str, Sequence[int]],
                   prefixes: Optional[Tuple[str, ...]] = None) -> Tuple[List[str], List[str], List[str]]:
    """Missing keys, unexpected keys and shape mismatches (``'key: got != expected'``) of ``got`` against
    ``expected`` (key -> shape); with ``prefixes``, keys outside them are neither missing nor unexpected."""
    def counted(k: str) -> bool:
        return prefixes is None or k.startswith(prefixes)

    missing = sorted(k for k in expected if counted(k) and k not in got)
    unexpected = sorted(k for k in got if counted(k) and k not in expected)
    wrong = [f'{k}: {tuple(v)} != {tuple(expected[k])}' for k, v in got.items()
             if k in expected and tuple(v) != tuple(expected[k])]
    return missing, unexpected, wrong


def check_encoder_weights(state_dict: Mapping[str, Tensor], own: Mapping[str, Tensor], arch_name: Optional[str],
                          source: str) -> None:
    """Raise a KeyError listing the encoder entries (:data:`ENCODER_PREFIXES`) of ``state_dict`` that are missing,
    unexpected or of the wrong shape against the model's ``own`` state dict; shapes are compared for every
    common key."""
    missing, unexpected, wrong = compare_shapes({k: v.shape for k, v in own.items()},
                                                {k: v.shape for k, v in state_dict.items()}, ENCODER_PREFIXES)
    if not (missing or unexpected or wrong):
        return

    def listing(keys: List[str]) -> str:
        return ', '.join(keys[:20]) + (f', ... ({len(keys) - 20} more)' if len(keys) > 20 else '')

    parts = [f'{len(keys)} {what}: [{listing(keys)}]'
             for what, keys in (('missing encoder keys', missing),
                                ('unexpected encoder keys', unexpected),
                                ('shape mismatches (checkpoint != model)', wrong))
             if keys]
    raise KeyError(
        f'MambaVision(arch={arch_name!r}): checkpoint {source!r} does not match '
        f'the encoder; nothing was loaded. ' + '; '.join(parts) + '. Is the checkpoint '
        'of another variant (arch, layer_scale)? See '
        'tools/model_converters/mambavision_nvlabs_to_mmseg.py to check a file.')
