"""Convert an NVlabs MambaVision checkpoint (``.pth.tar``) into a plain backbone ``.pth``.

No key mapping is needed: the plugin's ``MambaVision`` uses NVlabs' parameter names. The tool
takes the weights from ``state_dict`` (or ``state_dict_ema`` with ``--ema``, or ``model``),
strips ``module.``, drops the classifier (``norm.*``, ``head.*``), checks every name and shape
against ``MambaVision(arch=...)``, and saves ``{'state_dict': ..., 'meta': ...}`` holding
tensors only (loadable with ``torch.load(weights_only=True)``). The key handling is the backbone's own
(``projects/sar_oilspill/models/backbones/mambavision_checkpoint.py``, also used by ``init_cfg``).

Converting is optional: ``init_cfg=dict(type='Pretrained', checkpoint=<the .pth.tar>)`` loads
the NVlabs file directly. Convert when the original holds objects that ``weights_only``
loading refuses (then pass ``--unsafe-load`` for a file you trust), or to get a segmentor-style
file with ``--prefix backbone.`` for ``load_from``.

Example::

    python tools/model_converters/mambavision_nvlabs_to_mmseg.py \
        mambavision_base_1k.pth.tar work_dirs/pretrain/mambavision_base_1k_backbone.pth --arch base
"""
import argparse
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for `projects`

from projects.sar_oilspill.models.backbones.mambavision import ARCH_SETTINGS, MambaVision  # noqa: E402
from projects.sar_oilspill.models.backbones.mambavision_checkpoint import (  # noqa: E402
    CLASSIFIER_PREFIXES, compare_shapes, load_nvlabs_state_dict, nvlabs_weights)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='NVlabs checkpoint (.pth.tar)')
    parser.add_argument('dst', help='output file (.pth)')
    parser.add_argument('--arch', default='base', choices=sorted(ARCH_SETTINGS),
                        help='variant the checkpoint must match (default: base)')
    parser.add_argument('--ema', action='store_true', help='take `state_dict_ema`')
    parser.add_argument('--prefix', default='',
                        help="prepend to every key, e.g. 'backbone.' (default: none)")
    parser.add_argument('--unsafe-load', action='store_true',
                        help='torch.load(weights_only=False): only for files you trust')
    return parser.parse_args(argv)


def read_weights(src: str, ema: bool, unsafe: bool) -> Dict[str, torch.Tensor]:
    """Weights of ``src`` with NVlabs names, ``module.`` stripped."""
    if not Path(src).is_file():
        raise FileNotFoundError(f'checkpoint {src!r} does not exist')
    if not ema and not unsafe:
        return load_nvlabs_state_dict(src)
    ckpt = torch.load(src, map_location='cpu', weights_only=not unsafe)
    return nvlabs_weights(ckpt, key='state_dict_ema' if ema else 'state_dict', source=src)


def check_against_model(weights: Dict[str, torch.Tensor], arch: str) -> None:
    """Raise ValueError listing missing, unexpected and mis-shaped entries."""
    with torch.device('meta'):
        model = MambaVision(arch=arch)
    missing, unexpected, wrong = compare_shapes({k: v.shape for k, v in model.state_dict().items()},
                                                {k: v.shape for k, v in weights.items()})
    if missing or unexpected or wrong:
        raise ValueError(f'checkpoint does not match MambaVision(arch={arch!r}): '
                         f'{len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected '
                         f'{unexpected[:5]}, {len(wrong)} wrong shapes {wrong[:5]}')


def convert(argv: Optional[List[str]] = None) -> Dict[str, torch.Tensor]:
    """Run the conversion; returns the saved state dict (without the prefix)."""
    args = parse_args(argv)
    weights = read_weights(args.src, args.ema, args.unsafe_load)
    dropped = [k for k in weights if k.startswith(CLASSIFIER_PREFIXES)]
    weights = OrderedDict((k, v) for k, v in weights.items() if k not in dropped)
    check_against_model(weights, args.arch)
    out = OrderedDict((args.prefix + k, v.contiguous()) for k, v in weights.items())
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': out, 'meta': dict(source=Path(args.src).name, arch=args.arch)},
               args.dst)
    print(f'{args.src} -> {args.dst}: {len(out)} tensors '
          f'({sum(v.numel() for v in out.values()) / 1e6:.2f} M values), '
          f'dropped {len(dropped)} classifier entries')
    return weights


if __name__ == '__main__':
    convert()
