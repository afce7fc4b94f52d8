"""The embedded default: synthetic SAR scenes -> train a small model -> evaluate -> metric table + overlays.

Needs no download. Runs the user's own command lines (tools/train.py, tools/test.py) on a synthetic dataset in
OSD's layout, so everything a real run uses (dataset class, label decoding, metric table, visualisation) is
exercised. Takes a few minutes on a 2-core CPU.

    python tools/demo.py [--config CONFIG] [--iters N] [--work-dir DIR]
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from projects.sar_oilspill.datasets.synthetic import write_synthetic_osd  # noqa: E402

DEFAULT_CONFIG = 'configs/saross/synthetic_tiny.py'


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--iters', type=int, default=None, help='override the number of training iterations')
    p.add_argument('--data-root', default='data/synthetic_osd')
    p.add_argument('--work-dir', default='work_dirs/demo')
    a = p.parse_args()

    t0 = time.time()
    write_synthetic_osd(osp.join(ROOT, a.data_root), num_train=200, num_test=40, height=256, width=256, seed=0)
    print(f'[1/3] synthetic dataset at {a.data_root}')
    opts = [f'train_dataloader.dataset.data_root={a.data_root}', f'val_dataloader.dataset.data_root={a.data_root}',
            f'test_dataloader.dataset.data_root={a.data_root}']
    if a.iters:
        opts += [f'train_cfg.max_iters={a.iters}', f'train_cfg.val_interval={a.iters}',
                 f'default_hooks.checkpoint.interval={a.iters}']
    run([sys.executable, 'tools/train.py', a.config, '--work-dir', a.work_dir, '--cfg-options', *opts])
    print(f'[2/3] trained in {time.time() - t0:.0f} s')
    with open(osp.join(ROOT, a.work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    before = set(glob.glob(osp.join(ROOT, a.work_dir, 'test_metrics_*.json')))
    run([sys.executable, 'tools/test.py', a.config, ckpt, '--work-dir', a.work_dir, '--show-dir', 'overlays',
         '--cfg-options', *opts])
    new = sorted(set(glob.glob(osp.join(ROOT, a.work_dir, 'test_metrics_*.json'))) - before)
    with open(new[-1]) as f:
        metrics = json.load(f)['metrics']
    overlays = sorted(glob.glob(osp.join(ROOT, a.work_dir, 'overlays', '**', '*.png'), recursive=True))
    print('\n[3/3] test metrics on the synthetic test split (%):')
    for k in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc'):
        print(f'  {k:<11} {metrics[k]:6.2f}')
    for k, v in metrics.items():
        if k.startswith('IoU.'):
            print(f'  IoU {k[4:]:<12} {v:6.2f}')
    print(f'metrics JSON: {osp.relpath(new[-1], ROOT)}')
    if overlays:
        print(f'{len(overlays)} overlays (image | ground truth | prediction) in {osp.relpath(osp.dirname(overlays[0]), ROOT)}')
    print(f'total {time.time() - t0:.0f} s')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    main()
