"""The README's first command (`make demo` -> tools/demo.py) on a 2-iteration budget."""
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.mark.timeout(600)
def test_demo_runs_and_reports(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, 'tools/demo.py', '--iters', '2', '--data-root', str(tmp_path / 'syn'),
                        '--work-dir', str(tmp_path / 'demo')], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    for key in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc', 'IoU oil_spill', 'metrics JSON', 'overlays'):
        assert key in r.stdout
    assert len(os.listdir(tmp_path / 'syn' / 'train' / 'images')) == 200
