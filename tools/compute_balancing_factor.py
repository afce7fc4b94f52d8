"""Balancing factor b of a training set (paper Eq. 4 / 20) for SAR-JointNet.

b = sqrt(mean FFT power of the training images / mean FFT power of their masks), images scaled to [-1, 1], masks
one-hot in {-1, 1}, DC term included, averaged over the whole set. Streams the dataset (constant memory).

Examples:
    python tools/compute_balancing_factor.py configs/sar_jointnet/sos_alos.py
    python tools/compute_balancing_factor.py configs/sar_jointnet/sos_alos.py \
        --cfg-options train_dataloader.dataset.data_root=../shared/data/sos_mini     # about 0.433

The value is printed, written as JSON (``--out``, default ``<work_dir>/balancing_factor.json``) and as a config
fragment next to it (``balancing_factor.py``: ``model = dict(balancing_factor=...)``, usable as a ``_base_``);
pass it on with ``--cfg-options model.balancing_factor=VALUE``.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import numpy as np  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from projects.sar_oilspill.utils.cli import add_config_args, load_config  # noqa: E402

# the strict reader of training, check_dataset.py and inference: a file refused there is refused here, by name
LOAD_PIPELINE = [dict(type='LoadOilSpillImage'), dict(type='LoadOilSpillAnnotations')]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Balancing factor b (Eq. 4/20) of a training set')
    parser.add_argument('config', help='config whose train_dataloader.dataset is the training set')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'],
                        help='which dataloader of the config to read (default: train)')
    parser.add_argument('--max-samples', type=int, default=None, help='use only the first N pairs')
    parser.add_argument('--num-workers', type=int, default=2, help='data-loading processes')
    parser.add_argument('--fft-norm', default='backward', choices=['backward', 'ortho'],
                        help="'ortho' weighs every tile equally when tile sizes differ (see balancing_factor.py)")
    parser.add_argument('--out', help='JSON output (default <work_dir>/balancing_factor.json)')
    add_config_args(parser)  # --work-dir (default work_dirs/<config name>), --cfg-options
    return parser.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(argv)
    try:
        cfg = load_config(args)  # the same overrides and work-dir rule as train.py / test.py
    except FileNotFoundError as e:
        raise SystemExit(str(e)) from None
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import projects.sar_oilspill  # noqa: F401  (registers the datasets and transforms)
    import torch
    from mmseg.registry import DATASETS

    from projects.sar_oilspill.models.generators import BalancingFactorAccumulator, image_to_signed_unit
    from projects.sar_oilspill.utils.atomic import atomic_write, write_json_atomic
    from projects.sar_oilspill.datasets.image_io import ImageReadError

    loader_cfg = cfg.get(f'{args.split}_dataloader')
    if not loader_cfg or 'dataset' not in loader_cfg:
        raise SystemExit(f'{args.config} has no {args.split}_dataloader.dataset')
    ds_cfg = dict(loader_cfg['dataset'])
    if ds_cfg.get('type') in ('DAKDDataset', 'MultiImageMixDataset', 'ConcatDataset', 'RepeatDataset'):
        raise SystemExit(f'{args.split}_dataloader.dataset is a {ds_cfg["type"]}; give a config whose dataset is the '
                         'real training set (e.g. configs/sar_jointnet/*.py)')
    ds_cfg['pipeline'] = LOAD_PIPELINE  # no augmentation: the statistics of the stored pairs
    dataset = DATASETS.build(ds_cfg)
    num_classes = len(dataset.metainfo['classes'])
    n = len(dataset) if args.max_samples is None else min(len(dataset), args.max_samples)
    if n == 0:
        raise SystemExit(f'the {args.split} set of {args.config} is empty')
    subset = torch.utils.data.Subset(dataset, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=None, shuffle=False, num_workers=args.num_workers,
                                         collate_fn=lambda r: (r['img'], r['gt_seg_map'], r['img_path']))
    acc = BalancingFactorAccumulator(num_classes, fft_norm=args.fft_norm)
    print(f'balancing factor of {n} {args.split} pairs ({num_classes} classes) from {dataset.data_root}')
    bar, t0 = ProgressBar(n), time.perf_counter()
    try:
        for img, mask, path in loader:
            img = np.asarray(img)
            img = img.transpose(2, 0, 1) if img.ndim == 3 else img
            try:
                acc.update(image_to_signed_unit(img, 255.0), np.asarray(mask))
            except (ValueError, TypeError) as e:
                raise SystemExit(f'{path}: {e}') from e
            bar.update()
    except ImageReadError as e:  # from a worker, the message holds its traceback; its last line names the file
        raise SystemExit('\n' + str(e).strip().splitlines()[-1].split('ImageReadError: ', 1)[-1]) from e
    p_img, p_mask = acc.mean_powers()
    value = acc.value()
    seconds = time.perf_counter() - t0
    print(f'\nb = {value:.4f}  (mean image power {p_img:.6g}, mean mask power {p_mask:.6g}, {n} pairs, '
          f'{seconds:.1f} s)')
    out = args.out or osp.join(cfg.work_dir, 'balancing_factor.json')
    write_json_atomic(dict(balancing_factor=value, mean_image_power=p_img, mean_mask_power=p_mask, num_pairs=n,
                           num_classes=num_classes, fft_norm=args.fft_norm, split=args.split,
                           data_root=dataset.data_root, config=args.config), out)
    frag = osp.join(osp.dirname(out), 'balancing_factor.py')
    text = (f'# written by tools/compute_balancing_factor.py from {n} {args.split} pairs of {dataset.data_root}\n'
            f'model = dict(balancing_factor={value:.6f})\n')

    def write_fragment(path):
        with open(path, 'w') as f:
            f.write(text)

    atomic_write(frag, write_fragment)
    print(f'written {out} and {frag}; use: --cfg-options model.balancing_factor={value:.4f}')
    return value


if __name__ == '__main__':
    main()
