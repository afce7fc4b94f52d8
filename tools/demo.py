"""The embedded default: synthetic SAR scenes -> train a small model -> evaluate -> metric table + overlays.

Needs no download. Runs the user's own command lines (tools/train.py, tools/test.py) on a synthetic dataset in
OSD's layout, so everything a real run uses (dataset class, label decoding, metric table, visualisation) is
exercised. Takes about 10 minutes on a 2-core CPU.

With ``--dakd`` (``make demo-dakd``) it runs the paper's whole method on the same scenes at CPU size: balancing
factor -> SAR-JointNet's three stages -> generation of D_aug (tiles + soft labels, grid picture) -> the student
trained on real crops alone and on real crops + D_aug mosaics (DAKD), both evaluated the same way.

The terminal shows one progress bar per phase and the final table; each tool's whole output (mmengine's config
dump, hook tables, training log) goes to ``<work dir>/logs/<phase>.log``. A failing phase prints its error (the
traceback in full) and the path of its log.

    python tools/demo.py [--config CONFIG] [--iters N] [--work-dir DIR] [--dakd [--daug-samples N]]
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from projects.sar_oilspill.datasets.synthetic import write_synthetic_osd  # noqa: E402

DEFAULT_CONFIG = 'configs/saross/synthetic_tiny.py'
# How often the tools log an iteration (the bars advance at this step).
LOG_INTERVAL = 10
# Progress counters in a tool's output: mmengine's LoggerHook ("Iter(train) [ 20/900]") and ProgressBar ("] 5/200,").
_PROGRESS = re.compile(r'Iter\((?:train|val|test)\)\s*\[\s*(\d+)/(\d+)\]|\]\s*(\d+)/(\d+),')


def _error_text(log_text: str, max_lines: int = 60) -> str:
    """The part of a failed tool's output to print: from the first traceback to the end (in full), else the tail."""
    lines = log_text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith('Traceback (most recent call last)')), None)
    return '\n'.join(lines[first:] if first is not None else lines[-max_lines:])


def run(cmd, log, desc):
    """Run one tool with its whole output in ``log`` (relative to the repository root) and a progress bar ``desc``
    driven by the iteration counters of that output. On failure print the error and the log's path, and exit."""
    from tqdm import tqdm
    log_abs = osp.join(ROOT, log)
    os.makedirs(osp.dirname(log_abs), exist_ok=True)
    with open(log_abs, 'w') as out:
        out.write('+ ' + ' '.join(cmd) + '\n')
        out.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    bar = tqdm(desc=desc, total=None, unit='it', dynamic_ncols=True, file=sys.stdout)
    carry = ''
    try:
        with open(log_abs, errors='replace') as f:
            while True:
                finished = proc.poll() is not None
                text = carry + f.read()
                cut = max(text.rfind('\n'), text.rfind('\r')) + 1
                text, carry = text[:cut], text[cut:]
                matches = list(_PROGRESS.finditer(text))
                if matches:
                    g = matches[-1].groups()
                    n, total = (int(g[0]), int(g[1])) if g[0] is not None else (int(g[2]), int(g[3]))
                    if bar.total != total:
                        bar.reset(total=total)
                    bar.update(n - bar.n)
                if finished:
                    break
                time.sleep(0.5)
    except BaseException:
        proc.kill()
        bar.close()
        raise
    if proc.returncode:
        bar.close()
        with open(log_abs, errors='replace') as f:
            err = _error_text(f.read())
        print(f'\n{desc} FAILED (exit code {proc.returncode}):\n  {" ".join(cmd)}\n{err}\nfull log: {log}',
              file=sys.stderr, flush=True)
        raise SystemExit(proc.returncode)
    if bar.total:
        bar.update(bar.total - bar.n)
    bar.close()


def train_and_test(config, work_dir, data_opts, train_opts, show_dir=None, descs=('train', 'test')):
    """tools/train.py then tools/test.py on the last checkpoint; returns (metrics, metrics JSON path)."""
    logs = osp.join(work_dir, 'logs')
    # no validation pass at the end of training: the test right after evaluates the same scenes
    run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *data_opts,
         *train_opts, f'default_hooks.logger.interval={LOG_INTERVAL}', 'train_cfg.val_begin=1000000000'],
        osp.join(logs, 'train.log'), descs[0])
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    before = set(glob.glob(osp.join(ROOT, work_dir, 'test_metrics_*.json')))
    test = [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', work_dir]
    if show_dir:
        test += ['--show-dir', show_dir]
    run(test + ['--cfg-options', *data_opts, f'default_hooks.logger.interval={LOG_INTERVAL}'],
        osp.join(logs, 'test.log'), descs[1])
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


def make_data(a, step):
    """Write (or reuse) the synthetic scenes with a progress bar."""
    from tqdm import tqdm
    num_train, num_test = 200, 40
    bar = tqdm(desc=f'{step} generate data', total=num_train + num_test, unit='scene', dynamic_ncols=True,
               file=sys.stdout)
    write_synthetic_osd(osp.join(ROOT, a.data_root), num_train=num_train, num_test=num_test, height=256, width=256,
                        seed=0, progress=lambda done, total: bar.update(done - bar.n))
    if bar.n == 0:
        bar.set_postfix_str(f'reused {a.data_root}')
        bar.update(bar.total)
    bar.close()


def run_dakd(a, data_opts, t0):
    """Balancing factor -> SAR-JointNet (3 stages) -> D_aug -> students without / with DAKD."""
    jn_cfg, jn_wd = 'configs/sar_jointnet/synthetic_tiny_cpu.py', osp.join(a.work_dir, 'sar_jointnet')
    logs = osp.join(jn_wd, 'logs')
    train_root = [o for o in data_opts if o.startswith('train_')]
    bf_json = osp.join(jn_wd, 'balancing_factor.json')
    run([sys.executable, 'tools/compute_balancing_factor.py', jn_cfg, '--out', bf_json, '--cfg-options', *train_root],
        osp.join(logs, 'balancing_factor.log'), '[2/8] balancing factor')
    with open(osp.join(ROOT, bf_json)) as f:
        b = json.load(f)['balancing_factor']
    jn_opts = train_root + [f'model.balancing_factor={b:.6f}']
    if a.iters:
        n = max(1, a.iters // 3)
        jn_opts += [f'train_cfg.stage_iters=({n},{n},{n})', f'default_hooks.checkpoint.interval={n}']
    run([sys.executable, 'tools/train.py', jn_cfg, '--work-dir', jn_wd, '--cfg-options', *jn_opts,
         f'default_hooks.logger.interval={LOG_INTERVAL}'], osp.join(logs, 'train.log'),
        '[3/8] SAR-JointNet train (3 stages)')
    with open(osp.join(ROOT, jn_wd, 'last_checkpoint')) as f:
        jn_ckpt = f.read().strip()
    daug = osp.join(a.work_dir, 'daug')
    shutil.rmtree(osp.join(ROOT, daug), ignore_errors=True)  # the demo's own folder: always from this checkpoint
    run([sys.executable, 'tools/generate_daug.py', jn_cfg, jn_ckpt, '--work-dir', jn_wd, '--out-dir', daug,
         '--num-samples', str(a.daug_samples), '--batch-size', '16', '--cfg-options', *jn_opts],
        osp.join(logs, 'generate_daug.log'), '[4/8] generate D_aug')
    ref, ref_json = train_and_test('configs/saross/synthetic_tiny_crop128.py', osp.join(a.work_dir, 'student_real'),
                                   data_opts, iter_opts(a.iters),
                                   descs=('[5/8] student train, real crops', '[6/8] student test, real crops'))
    dakd_data = [o.replace('train_dataloader.dataset.', 'train_dataloader.dataset.real.') for o in data_opts]
    dakd_data += [f'train_dataloader.dataset.synthetic.data_root={daug}']
    dk, dk_json = train_and_test('configs/dakd/saross_synthetic_tiny.py', osp.join(a.work_dir, 'student_dakd'),
                                 dakd_data, iter_opts(a.iters), show_dir='overlays',
                                 descs=('[7/8] student train, real + D_aug', '[8/8] student test, real + D_aug'))
    print(f'\nbalancing factor b = {b:.4f}; {a.daug_samples} generated tiles + soft labels in {daug} '
          f'(grid: {daug}/grid.png)')
    print('\nsynthetic test split (%), same student, same iterations and seed:')
    print('| training data | mIoU | mF1 | ' + ' | '.join(f'IoU {k[4:]}' for k in ref if k.startswith('IoU.')) + ' |')
    print('|---|---|---|' + '---|' * sum(k.startswith('IoU.') for k in ref))
    for name, m in (('real crops', ref), ('real crops + D_aug (DAKD)', dk)):
        print(f'| {name} | {m["mIoU"]:.2f} | {m["mF1"]:.2f} | ' +
              ' | '.join(f'{v:.2f}' for k, v in m.items() if k.startswith('IoU.')) + ' |')
    keys = ['mIoU'] + [k for k in ref if k.startswith('IoU.')]
    print('DAKD minus real crops only (points): ' +
          ', '.join(f'{k.replace("IoU.", "IoU ")} {dk[k] - ref[k]:+.2f}' for k in keys))
    print(f'metrics JSON: {osp.relpath(ref_json, ROOT)}, {osp.relpath(dk_json, ROOT)}')
    print(f'full logs: {a.work_dir}/*/logs/')
    print(f'total {time.time() - t0:.0f} s')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--iters', type=int, default=None, help='override the number of training iterations')
    p.add_argument('--data-root', default='data/synthetic_osd')
    p.add_argument('--work-dir', default=None, help='default work_dirs/demo (work_dirs/demo_dakd with --dakd)')
    p.add_argument('--dakd', action='store_true', help='run SAR-JointNet + DAKD (about 20 minutes on 2 cores)')
    p.add_argument('--daug-samples', type=int, default=200, help='generated tiles for --dakd')
    a = p.parse_args()
    a.work_dir = a.work_dir or ('work_dirs/demo_dakd' if a.dakd else 'work_dirs/demo')

    t0 = time.time()
    print(f'full logs of each phase: {a.work_dir}/' + ('*/logs/' if a.dakd else 'logs/'), flush=True)
    make_data(a, '[1/8]' if a.dakd else '[1/3]')
    opts = [f'train_dataloader.dataset.data_root={a.data_root}', f'val_dataloader.dataset.data_root={a.data_root}',
            f'test_dataloader.dataset.data_root={a.data_root}']
    if a.dakd:
        return run_dakd(a, opts, t0)
    metrics, path = train_and_test(a.config, a.work_dir, opts, iter_opts(a.iters), show_dir='overlays',
                                   descs=('[2/3] train', '[3/3] test'))
    overlays = sorted(glob.glob(osp.join(ROOT, a.work_dir, 'overlays', '**', '*.png'), recursive=True))
    print('\ntest metrics on the synthetic test split (%):')
    print_metrics(metrics)
    print(f'metrics JSON: {osp.relpath(path, ROOT)}')
    if overlays:
        print(f'{len(overlays)} overlays (image | ground truth | prediction) in '
              f'{osp.relpath(osp.dirname(overlays[0]), ROOT)}')
    print(f'full logs: {a.work_dir}/logs/train.log, {a.work_dir}/logs/test.log')
    print(f'total {time.time() - t0:.0f} s')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    # a terminated demo takes the running tool down with it (run() kills it on any exit)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    main()
