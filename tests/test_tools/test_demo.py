"""The README's first command (`make demo` -> tools/demo.py): its terminal output (progress bars, final table), its
logs and its error report."""
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _demo(tmp_path, *args):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, 'tools/demo.py', '--data-root', str(tmp_path / 'syn'),
                           '--work-dir', str(tmp_path / 'demo'), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.mark.timeout(600)
def test_demo_runs_and_reports(tmp_path):
    r = _demo(tmp_path, '--iters', '2')
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    for key in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc', 'IoU oil_spill', 'metrics JSON', 'overlays',
                '[1/3] generate data', '[2/3] train', '[3/3] test', 'full logs'):
        assert key in r.stdout, key
    assert len(os.listdir(tmp_path / 'syn' / 'train' / 'images')) == 200
    # mmengine's config dump, environment and hook tables go to the logs, not to the terminal
    for noise in ('System environment', 'Config:', 'before_train:', 'Saving checkpoint'):
        assert noise not in r.stdout + r.stderr, noise
    train_log = (tmp_path / 'demo' / 'logs' / 'train.log').read_text()
    assert 'Config:' in train_log and 'Saving checkpoint at 2 iterations' in train_log
    assert 'Iter(test)' in (tmp_path / 'demo' / 'logs' / 'test.log').read_text()


@pytest.mark.timeout(300)
def test_demo_failure_prints_the_error_and_the_log(tmp_path):
    r = _demo(tmp_path, '--iters', '2', '--config', 'configs/saross/no_such_config.py')
    assert r.returncode != 0
    assert '[2/3] train FAILED' in r.stderr
    assert 'Traceback (most recent call last)' in r.stderr and 'no_such_config.py' in r.stderr
    assert osp.join('demo', 'logs', 'train.log') in r.stderr


def test_error_text_keeps_the_whole_traceback():
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    from demo import _error_text
    log = '\n'.join([f'noise {i}' for i in range(500)] + ['Traceback (most recent call last):'] +
                    [f'  frame {i}' for i in range(100)] + ['ValueError: boom'])
    text = _error_text(log)
    assert text.startswith('Traceback') and text.endswith('ValueError: boom') and 'frame 0' in text
    assert _error_text('a\nb\nc', max_lines=2) == 'b\nc'
