"""Check a SAR oil-spill dataset before training; exit status 1 when anything is wrong.

Reports an empty image folder, images without masks (and masks without images), unreadable files (empty, truncated
or undecodable: the same reader as training, tools/compute_balancing_factor.py and tools/inference.py, so the
same files are refused), wrong sizes, label values or colours the format does not allow, and the pixel frequency
of each class. SOS masks saved as 0/1 (0 % oil) are warned about without failing the check.

Examples:
    python tools/dataset_tools/check_dataset.py --config configs/saross/sos_alos.py --split train
    python tools/dataset_tools/check_dataset.py --type SOSDataset --root data/sos --img-dir train/palsar
    python tools/dataset_tools/check_dataset.py --type OSDDataset --root data/osd --img-dir train/images \
        --seg-dir train/labels_1D --expect-size 650 1250
"""
import argparse
import copy
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import projects.sar_oilspill  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402

from projects.sar_oilspill.datasets.check import check_dataset  # noqa: E402


def dataset_cfg_from_args(a: argparse.Namespace) -> dict:
    if a.config:
        cfg = Config.fromfile(a.config)
        if a.cfg_options:
            cfg.merge_from_dict(a.cfg_options)
        ds = copy.deepcopy(cfg[f'{a.split}_dataloader']['dataset'])
        while ds.get('type') in ('ConcatDataset', 'RepeatDataset') or 'datasets' in ds:
            ds = ds['datasets'][0] if 'datasets' in ds else ds['dataset']
    else:
        if not (a.type and a.root and a.img_dir):
            raise SystemExit('give --config, or --type, --root and --img-dir')
        ds = dict(type=a.type, data_root=a.root,
                  data_prefix=dict(img_path=a.img_dir, seg_map_path=a.seg_dir or a.img_dir))
    ds['pipeline'] = []
    ds['check_files'] = False
    ds.pop('indices', None)
    return ds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='a config; its <split>_dataloader.dataset is checked')
    p.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--type', help='dataset class, e.g. SOSDataset or OSDDataset (without --config)')
    p.add_argument('--root', help='data root (without --config)')
    p.add_argument('--img-dir', help='image folder relative to --root')
    p.add_argument('--seg-dir', help='mask folder relative to --root (default: --img-dir)')
    p.add_argument('--expect-size', type=int, nargs=2, metavar=('H', 'W'), help='every image must be HxW')
    p.add_argument('--json', help='also write the report as JSON here')
    a = p.parse_args()
    ds_cfg = dataset_cfg_from_args(a)
    root = ds_cfg.get('data_root')
    if root and not osp.isdir(root):
        print(f'PROBLEM: data root {root!r} does not exist')
        return 1
    try:
        dataset = DATASETS.build(ds_cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f'PROBLEM: {e}')
        return 1
    rep = check_dataset(dataset, expect_size=a.expect_size)
    print(f'{ds_cfg["type"]} at {root}: {rep["num_pairs"]} images')
    for cls, frac in rep['class_frequency'].items():
        print(f'  {cls:<14} {100 * frac:6.2f} % of pixels ({rep["class_pixels"][cls]})')
    for msg in rep.get('warnings', []):
        print(f'WARNING: {msg}')
    for msg in rep['problems']:
        print(f'PROBLEM: {msg}')
    if rep['num_problems'] > len(rep['problems']):
        print(f'... and {rep["num_problems"] - len(rep["problems"])} more problems')
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(rep, f, indent=1)
    print('OK' if rep['num_problems'] == 0 else f'{rep["num_problems"]} problems')
    return 0 if rep['num_problems'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
