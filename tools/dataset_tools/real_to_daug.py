"""Write a D_aug folder of random crops of *real* labelled tiles: the control of a DAKD study.

A generator can at best reproduce its training set. Cutting crops of the very tiles SAR-JointNet trains on, with
their hard labels as (near one-hot) logits, gives a D_aug of that quality (real speckle, labels that agree with
their images exactly), which DAKD students then train on exactly like on generated tiles (the same mosaics, KD and
soft Dice). Whatever this control costs or gains against real-only training is what the DAKD recipe itself does at
this budget; what a generated D_aug does beyond it is the generator's share.

Sample ``i`` (named as the generation loop names it, ``s{i:06d}``) is a ``--size`` crop, flipped horizontally with
probability 0.5, of a tile drawn with ``numpy.random.default_rng([seed, i])``, so a resumed run writes the same
samples. Logits are ``margin`` for the labelled class and 0 for the others (softmax at temperature T gives the
labelled class ``e^(m/T) / (e^(m/T) + K - 1)``: 0.98 for m = 8, T = 2, K = 2); pixels with mmseg's ignore index
get all-zero (uniform) logits. Files are written atomically through :class:`DAugFolder`; the manifest (with the
list of samples and the tile each came from) is written last, so an interrupted run is resumed, not read.

Example (the training part of the SOS-ALOS split of a config)::

    python tools/dataset_tools/real_to_daug.py configs/saross/sos_alos_tiny_cpu.py --out-dir data/daug/real_crops \
        --num-samples 360 --size 64 --cfg-options train_dataloader.dataset.data_root=../shared/data/sos_mini
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import numpy as np  # noqa: E402

import projects.sar_oilspill  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

from projects.sar_oilspill.datasets.daug import DAugFolder  # noqa: E402
from projects.sar_oilspill.utils.cli import real_train_dataset_cfg  # noqa: E402

SETTING_KEYS = ('source', 'config', 'dataset', 'num_samples', 'size', 'seed', 'margin', 'classes', 'num_classes')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help="config whose train_dataloader.dataset (DAKDDataset: its 'real' part) gives the "
                   'tiles, split included; only its Load* transforms are used')
    p.add_argument('--out-dir', required=True, help='the D_aug folder to write (resumed when its settings match)')
    p.add_argument('--num-samples', type=int, default=None, help='crops to write (default: one per tile)')
    p.add_argument('--size', type=int, default=64, help='crop size in pixels (square)')
    p.add_argument('--seed', type=int, default=0, help='seed of the tile, crop and flip choices')
    p.add_argument('--margin', type=float, default=8.0, help='logit of the labelled class (the others: 0)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    a = p.parse_args(argv)
    if a.size < 1:
        p.error(f'--size must be >= 1, got {a.size}')
    if a.num_samples is not None and a.num_samples < 1:
        p.error(f'--num-samples must be >= 1, got {a.num_samples}')
    if not a.margin > 0:
        p.error(f'--margin must be > 0, got {a.margin}')
    return a


def build_dataset(cfg: Config):
    ds = real_train_dataset_cfg(cfg)
    ds['pipeline'] = [t for t in ds.get('pipeline', []) if str(t.get('type', '')).startswith('Load')]
    if not ds['pipeline']:
        raise ValueError(f'{cfg.filename}: train_dataloader.dataset.pipeline has no Load* transform to read the '
                         'tiles with')
    return DATASETS.build(ds), ds


def crop_sample(dataset, index: int, seed: int, size: int, margin: float, num_classes: int,
                ignore_index: int = 255):
    """(tile index, y, x, flipped, uint8 image (size, size), float32 logits (K, size, size)) of sample ``index``."""
    rng = np.random.default_rng([seed, index])
    tile = int(rng.integers(len(dataset)))
    results = dataset[tile]
    img, label = np.asarray(results['img']), np.asarray(results['gt_seg_map'])
    path = results.get('img_path', f'tile {tile}')
    if img.ndim == 3:
        img = img[..., 0]  # SAR tiles: identical channels
    if img.dtype != np.uint8:
        raise ValueError(f'{path}: image of dtype {img.dtype}; the D_aug format stores 8-bit tiles')
    h, w = label.shape
    if img.shape != (h, w) or h < size or w < size:
        raise ValueError(f'{path}: image {img.shape} / label {label.shape}: expected equal sizes of at least '
                         f'{size}x{size} (--size)')
    y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    flip = bool(rng.random() < 0.5)
    img, label = img[y:y + size, x:x + size], label[y:y + size, x:x + size]
    if flip:
        img, label = img[:, ::-1], label[:, ::-1]
    bad = (label != ignore_index) & (label >= num_classes)
    if bad.any():
        raise ValueError(f'{path}: label values {np.unique(label[bad]).tolist()} outside 0..{num_classes - 1}')
    logits = np.zeros((num_classes, size, size), np.float32)
    for k in range(num_classes):
        logits[k][label == k] = margin
    return tile, y, x, flip, np.ascontiguousarray(img), logits


def main(argv=None) -> int:
    a = parse_args(argv)
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(a.config)
    if a.cfg_options:
        cfg.merge_from_dict(a.cfg_options)
    dataset, ds_cfg = build_dataset(cfg)
    if len(dataset) == 0:
        raise SystemExit(f'{a.config}: the training dataset is empty')
    classes = list(dataset.metainfo['classes'])
    n = a.num_samples or len(dataset)
    ds_desc = {k: ds_cfg.get(k) for k in ('type', 'data_root', 'data_prefix', 'split', 'ann_file')}
    settings = dict(source='real_crops', config=osp.abspath(a.config), dataset=ds_desc, num_samples=n,
                    size=[a.size, a.size], seed=a.seed, margin=a.margin, classes=classes, num_classes=len(classes))
    folder = DAugFolder(a.out_dir)
    folder.check_settings(settings, SETTING_KEYS)
    folder.write_manifest(dict(settings, name_prefix='s', complete=False))  # resumable, not readable as complete
    samples = []
    for i in range(n):
        name = folder.sample_name(i)
        tile, y, x, flip, img, logits = crop_sample(dataset, i, a.seed, a.size, a.margin, len(classes))
        if not folder.has_sample(name):
            folder.write_sample(name, img, logits)
        samples.append(dict(name=name, index=i, tile=osp.relpath(dataset.get_data_info(tile)['img_path'],
                                                                  dataset.data_root), y=y, x=x, hflip=flip))
    folder.write_manifest(dict(settings, name_prefix='s', complete=True, samples=samples))
    print(f'{n} real crops of {a.size}x{a.size} from {len(dataset)} tiles -> {a.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
