"""Count the parameters and FLOPs of a segmentor built from a config.

Usage::

    python tools/analysis/get_flops.py CONFIG --shape H W [--show-table]
        [--cfg-options key=value ...]

Like mmseg's ``tools/analysis/get_flops.py``, it builds ``cfg.model`` (without
auxiliary heads), runs one random ``(1, 3, H, W)`` image through the data
preprocessor and counts with mmengine's ``get_model_complexity_info``
(fvcore-style: one multiply-add counts as one FLOP; element-wise ops, softmax
and norms' statistics are not counted). Unlike mmseg 1.2.2's script it passes
only ``inputs`` (mmengine 0.10 rejects ``input_shape`` and ``inputs``
together) and it works for plugin models (``custom_imports`` in the config).
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine import Config, DictAction
from mmengine.analysis import get_model_complexity_info
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

# make `projects.sar_oilspill` importable when run from a source checkout
REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Count params and FLOPs of a segmentor')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[512, 512],
        help='input size: H W, or one value for a square input')
    parser.add_argument(
        '--show-table',
        action='store_true',
        help='also print the per-module complexity table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (mmengine syntax)')
    return parser.parse_args()


def complexity(cfg: Config, height: int, width: int,
               show_table: bool = False) -> dict:
    """Build ``cfg.model`` and count its parameters and FLOPs.

    Args:
        cfg (Config): Full config with a ``model`` entry.
        height (int): Input height.
        width (int): Input width.
        show_table (bool): Return the per-module table too.

    Returns:
        dict: ``params`` (int), ``flops`` (int, multiply-adds), ``shape``
        (padded input shape) and ``table`` (str, empty unless requested).
    """
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('auxiliary_head', None)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.eval()
    if torch.cuda.is_available():
        model.cuda()
    shape = (height, width)
    sample = SegDataSample(metainfo=dict(ori_shape=shape, pad_shape=shape,
                                         img_shape=shape))
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(3, height, width) * 255],
             data_samples=[sample]))
    with torch.no_grad():
        out = get_model_complexity_info(
            model, inputs=data['inputs'], show_table=show_table,
            show_arch=False)
    return dict(
        params=sum(p.numel() for p in model.parameters()),
        flops=int(out['flops']),
        shape=tuple(data['inputs'].shape[-2:]),
        table=out.get('out_table', '') if show_table else '')


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'get_flops: config {args.config} not found')
    if len(args.shape) == 1:
        height = width = args.shape[0]
    elif len(args.shape) == 2:
        height, width = args.shape
    else:
        raise ValueError(f'get_flops: --shape {args.shape}; expected H W or '
                         'a single size')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    res = complexity(cfg, height, width, args.show_table)
    line = '=' * 40
    if res['table']:
        print(res['table'])
    print(f'{line}\nConfig: {args.config}\nInput shape: (1, 3) + '
          f'{res["shape"]}\nParams: {res["params"] / 1e6:.3f} M\n'
          f'FLOPs: {res["flops"] / 1e9:.3f} G (1 FLOP = 1 multiply-add)\n'
          f'{line}')


if __name__ == '__main__':
    main()
