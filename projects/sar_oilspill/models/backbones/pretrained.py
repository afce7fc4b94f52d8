"""ImageNet weights of the encoders, declared in the configs by their official release URL.

The paper configs declare their encoder weights as mmseg's own configs do,
``init_cfg=dict(type='Pretrained', checkpoint=URL)``; mmengine reads URLs through ``CheckpointLoader``. For the
release hosts below this module registers a loader (longest prefix wins in mmengine, so other URLs keep mmengine's
own) that

1. with ``$SAR_OILSPILL_WEIGHTS_DIR`` set (an offline weights folder), reads ``<that folder>/<file name of the URL>``
   and nothing else (no network);
2. otherwise reads the file from torch's hub cache (``$TORCH_HOME/hub/checkpoints``, as mmengine/torch.hub cache
   downloads), downloading it there once (process 0 first, the others wait, as mmengine does);
3. loads it weights-only (:func:`~projects.sar_oilspill.utils.checkpoint_compat.load_checkpoint_file`);

and, when the file cannot be had, raises :class:`PretrainedWeightsUnavailable` naming the file, the URL, the
environment variable and the ``--cfg-options`` that point at a local file or train from scratch. The Runner loads
the weights in ``init_weights``, after building the dataloaders and before the first batch is read.

A local file instead of the URL: ``--cfg-options model.backbone.init_cfg.checkpoint=/path/to/file``.
"""
import os
import os.path as osp
import re
from typing import Dict, Optional
from urllib.parse import urlparse

import torch
from mmengine.runner.checkpoint import CheckpointLoader

WEIGHTS_DIR_ENV = 'SAR_OILSPILL_WEIGHTS_DIR'

# Official release locations (NVlabs' MambaVision README / default_cfgs; torchvision's ResNet34_Weights.IMAGENET1K_V1).
MAMBAVISION_B_1K = 'https://huggingface.co/nvidia/MambaVision-B-1K/resolve/main/mambavision_base_1k.pth.tar'
RESNET34_IMAGENET = 'https://download.pytorch.org/models/resnet34-b627a593.pth'

# ImageNet-1K checkpoints of every MambaVision variant published by NVlabs (weights under `state_dict`).
NVLABS_CHECKPOINTS: Dict[str, str] = {
    'tiny': 'https://huggingface.co/nvidia/MambaVision-T-1K/resolve/main/mambavision_tiny_1k.pth.tar',
    'tiny2': 'https://huggingface.co/nvidia/MambaVision-T2-1K/resolve/main/mambavision_tiny2_1k.pth.tar',
    'small': 'https://huggingface.co/nvidia/MambaVision-S-1K/resolve/main/mambavision_small_1k.pth.tar',
    'base': MAMBAVISION_B_1K,
    'large': 'https://huggingface.co/nvidia/MambaVision-L-1K/resolve/main/mambavision_large_1k.pth.tar',
    'large2': 'https://huggingface.co/nvidia/MambaVision-L2-1K/resolve/main/mambavision_large2_1k.pth.tar',
}  # yapf: disable

# file name -> (what it is, where it is described)
KNOWN_WEIGHTS: Dict[str, tuple] = {
    'mambavision_base_1k.pth.tar': ("NVlabs' ImageNet-1K MambaVision-B",
                                    'https://huggingface.co/nvidia/MambaVision-B-1K'),
    'resnet34-b627a593.pth': ("torchvision's ImageNet-1K ResNet-34 (IMAGENET1K_V1)",
                              'https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet34.html'),
}
WEIGHT_HOSTS = ('https://huggingface.co/', 'https://download.pytorch.org/')


class PretrainedWeightsUnavailable(FileNotFoundError):
    """The declared pretrained weights are neither in the offline folder / cache nor downloadable."""


def weights_file_name(url: str) -> str:
    return osp.basename(urlparse(url).path)


def unavailable_message(url: str, reason: str) -> str:
    name = weights_file_name(url)
    what, page = KNOWN_WEIGHTS.get(name, ('pretrained', None))
    return (f'{what} weights {name!r} (init_cfg Pretrained, {url}) could not be had: {reason}.\n'
            f'Download the file on a machine with internet access ({url}'
            + (f'; described at {page}' if page else '') + '), then either\n'
            f'  * put it in a folder and set {WEIGHTS_DIR_ENV}=/that/folder (offline weights folder: when set, only '
            f'it is used), or\n'
            f'  * pass its path: --cfg-options model.backbone.init_cfg.checkpoint=/path/to/{name}\n'
            'To train from random weights instead: --cfg-options model.backbone.init_cfg=None')


def _download(url: str, path: str) -> Optional[str]:
    """Download ``url`` to ``path`` (torch.hub writes a temporary file and renames it); the error text or None."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    # torch.hub's naming convention `name-<sha256 prefix>.ext` (torchvision's files): verify the hash
    found = re.search(r'-([a-f0-9]{8,})\.', osp.basename(path))
    try:
        torch.hub.download_url_to_file(url, path, hash_prefix=found.group(1) if found else None,
                                       progress=os.isatty(2))
    except Exception as e:  # URLError, HTTPError, OSError, ... : all mean "not available"
        return f'downloading it to {path} failed ({type(e).__name__}: {e})'
    return None


def resolve_pretrained(url: str) -> str:
    """The local file for a weights URL (see the module docstring); raises :class:`PretrainedWeightsUnavailable`."""
    name = weights_file_name(url)
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if folder:
        path = osp.join(osp.expanduser(folder), name)
        if osp.isfile(path):
            return path
        raise PretrainedWeightsUnavailable(
            unavailable_message(url, f'{WEIGHTS_DIR_ENV}={folder} is set and {path} does not exist'))
    path = osp.join(torch.hub.get_dir(), 'checkpoints', name)
    if osp.isfile(path):
        return path
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    error = _download(url, path) if rank == 0 else None
    if world_size > 1:
        barrier()  # process 0 has downloaded (or failed); the others read its file or try themselves
        if rank > 0 and not osp.isfile(path):
            error = _download(url, path)
    if error or not osp.isfile(path):
        raise PretrainedWeightsUnavailable(unavailable_message(url, error or f'{path} was not written'))
    return path


def load_from_weight_hosts(filename: str, map_location=None):
    """mmengine ``CheckpointLoader`` scheme for :data:`WEIGHT_HOSTS`: resolve, then read weights-only."""
    from ...utils.checkpoint_compat import load_checkpoint_file
    from mmengine.logging import print_log
    path = resolve_pretrained(filename)
    what, _ = KNOWN_WEIGHTS.get(weights_file_name(filename), ('pretrained', None))
    print_log(f'{what} weights {filename}: reading {path}', logger='current')
    return load_checkpoint_file(path, map_location=map_location or 'cpu', what=f'{what} weights')


CheckpointLoader.register_scheme(WEIGHT_HOSTS, load_from_weight_hosts, force=True)
