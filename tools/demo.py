"""The embedded default: synthetic SAR scenes -> train a small model -> evaluate -> metric table + overlays.

Needs no download. Runs the user's own command lines (tools/train.py, tools/test.py) on a synthetic dataset in
OSD's layout, so everything a real run uses (dataset class, label decoding, metric table, visualisation) is
exercised. Takes a few minutes on a 2-core CPU.

With ``--dakd`` (``make demo-dakd``) it runs the paper's whole method on the same scenes at CPU size: balancing
factor -> SAR-JointNet's three stages -> generation of D_aug (tiles + soft labels, grid picture) -> the student
trained on real crops alone and on real crops + D_aug mosaics (DAKD), both evaluated the same way.

    python tools/demo.py [--config CONFIG] [--iters N] [--work-dir DIR] [--dakd [--daug-samples N]]
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
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


def train_and_test(config, work_dir, opts, show_dir=None):
    """tools/train.py then tools/test.py on the last checkpoint; returns (metrics, metrics JSON path)."""
    run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *opts])
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    before = set(glob.glob(osp.join(ROOT, work_dir, 'test_metrics_*.json')))
    test = [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', work_dir]
    if show_dir:
        test += ['--show-dir', show_dir]
    run(test + ['--cfg-options', *[o for o in opts if not o.startswith(('train_cfg', 'default_hooks'))]])
    new = sorted(set(glob.glob(osp.join(ROOT, work_dir, 'test_metrics_*.json'))) - before)
    with open(new[-1]) as f:
        return json.load(f)['metrics'], new[-1]


def print_metrics(metrics):
    for k in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc'):
        print(f'  {k:<11} {metrics[k]:6.2f}')
    for k, v in metrics.items():
        if k.startswith('IoU.'):
            print(f'  IoU {k[4:]:<12} {v:6.2f}')


def iter_opts(iters):
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}'] if iters else []


def run_dakd(a, data_opts, t0):
    """Balancing factor -> SAR-JointNet (3 stages) -> D_aug -> students without / with DAKD."""
    jn_cfg, jn_wd = 'configs/sar_jointnet/synthetic_tiny_cpu.py', osp.join(a.work_dir, 'sar_jointnet')
    train_root = [o for o in data_opts if o.startswith('train_')]
    bf_json = osp.join(jn_wd, 'balancing_factor.json')
    run([sys.executable, 'tools/compute_balancing_factor.py', jn_cfg, '--out', bf_json, '--cfg-options', *train_root])
    with open(osp.join(ROOT, bf_json)) as f:
        b = json.load(f)['balancing_factor']
    print(f'[2/6] balancing factor b = {b:.4f} ({time.time() - t0:.0f} s)')
    jn_opts = train_root + [f'model.balancing_factor={b:.6f}']
    if a.iters:
        n = max(1, a.iters // 3)
        jn_opts += [f'train_cfg.stage_iters=({n},{n},{n})', f'default_hooks.checkpoint.interval={n}']
    run([sys.executable, 'tools/train.py', jn_cfg, '--work-dir', jn_wd, '--cfg-options', *jn_opts])
    with open(osp.join(ROOT, jn_wd, 'last_checkpoint')) as f:
        jn_ckpt = f.read().strip()
    print(f'[3/6] SAR-JointNet trained, 3 stages ({time.time() - t0:.0f} s)')
    daug = osp.join(a.work_dir, 'daug')
    shutil.rmtree(osp.join(ROOT, daug), ignore_errors=True)  # the demo's own folder: always from this checkpoint
    run([sys.executable, 'tools/generate_daug.py', jn_cfg, jn_ckpt, '--work-dir', jn_wd, '--out-dir', daug,
         '--num-samples', str(a.daug_samples), '--batch-size', '16', '--cfg-options', *jn_opts])
    print(f'[4/6] {a.daug_samples} generated tiles + soft labels in {daug} (grid: {daug}/grid.png) '
          f'({time.time() - t0:.0f} s)')
    ref, ref_json = train_and_test('configs/saross/synthetic_tiny_crop128.py', osp.join(a.work_dir, 'student_real'),
                                   data_opts + iter_opts(a.iters))
    print(f'[5/6] student on real crops only ({time.time() - t0:.0f} s)')
    dakd_opts = [o.replace('train_dataloader.dataset.', 'train_dataloader.dataset.real.') for o in data_opts]
    dakd_opts += [f'train_dataloader.dataset.synthetic.data_root={daug}'] + iter_opts(a.iters)
    dk, dk_json = train_and_test('configs/dakd/saross_synthetic_tiny.py', osp.join(a.work_dir, 'student_dakd'),
                                 dakd_opts, show_dir='overlays')
    print(f'\n[6/6] synthetic test split (%), same student, same iterations and seed:')
    print('| training data | mIoU | mF1 | ' + ' | '.join(f'IoU {k[4:]}' for k in ref if k.startswith('IoU.')) + ' |')
    print('|---|---|---|' + '---|' * sum(k.startswith('IoU.') for k in ref))
    for name, m in (('real crops', ref), ('real crops + D_aug (DAKD)', dk)):
        print(f'| {name} | {m["mIoU"]:.2f} | {m["mF1"]:.2f} | ' +
              ' | '.join(f'{v:.2f}' for k, v in m.items() if k.startswith('IoU.')) + ' |')
    print(f'metrics JSON: {osp.relpath(ref_json, ROOT)}, {osp.relpath(dk_json, ROOT)}')
    print(f'total {time.time() - t0:.0f} s')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--iters', type=int, default=None, help='override the number of training iterations')
    p.add_argument('--data-root', default='data/synthetic_osd')
    p.add_argument('--work-dir', default=None, help='default work_dirs/demo (work_dirs/demo_dakd with --dakd)')
    p.add_argument('--dakd', action='store_true', help='run SAR-JointNet + DAKD (about 15 minutes on 2 cores)')
    p.add_argument('--daug-samples', type=int, default=200, help='generated tiles for --dakd')
    a = p.parse_args()
    a.work_dir = a.work_dir or ('work_dirs/demo_dakd' if a.dakd else 'work_dirs/demo')

    t0 = time.time()
    write_synthetic_osd(osp.join(ROOT, a.data_root), num_train=200, num_test=40, height=256, width=256, seed=0)
    print(f'[1/{6 if a.dakd else 3}] synthetic dataset at {a.data_root}')
    opts = [f'train_dataloader.dataset.data_root={a.data_root}', f'val_dataloader.dataset.data_root={a.data_root}',
            f'test_dataloader.dataset.data_root={a.data_root}']
    if a.dakd:
        return run_dakd(a, opts, t0)
    metrics, path = train_and_test(a.config, a.work_dir, opts + iter_opts(a.iters), show_dir='overlays')
    overlays = sorted(glob.glob(osp.join(ROOT, a.work_dir, 'overlays', '**', '*.png'), recursive=True))
    print(f'[2/3] trained and tested in {time.time() - t0:.0f} s')
    print('\n[3/3] test metrics on the synthetic test split (%):')
    print_metrics(metrics)
    print(f'metrics JSON: {osp.relpath(path, ROOT)}')
    if overlays:
        print(f'{len(overlays)} overlays (image | ground truth | prediction) in '
              f'{osp.relpath(osp.dirname(overlays[0]), ROOT)}')
    print(f'total {time.time() - t0:.0f} s')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    main()
