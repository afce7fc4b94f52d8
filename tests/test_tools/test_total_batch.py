"""The paper's total batch for any number of processes: total_batch_size -> per-process batch = total / processes."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from projects.sar_oilspill.utils.cli import resolve_total_batch_size

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _cfg(total=16, batch=16):
    return Config(dict(total_batch_size=total, train_dataloader=dict(batch_size=batch)))


@pytest.mark.parametrize('world,per_process', [(None, 16), ('1', 16), ('2', 8), ('4', 4), ('16', 1)])
def test_per_process_batch_from_the_total(monkeypatch, world, per_process):
    if world is None:
        monkeypatch.delenv('WORLD_SIZE', raising=False)
    else:
        monkeypatch.setenv('WORLD_SIZE', world)
    cfg = _cfg()
    resolve_total_batch_size(cfg, 'pytorch' if world else 'none')
    assert cfg.train_dataloader.batch_size == per_process


def test_indivisible_total_and_explicit_batch(monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '3')
    with pytest.raises(SystemExit, match=r'total_batch_size=16 cannot be split over 3 processes'):
        resolve_total_batch_size(_cfg(), 'pytorch')
    cfg = _cfg(batch=5)  # --cfg-options train_dataloader.batch_size=5: per process, as given
    resolve_total_batch_size(cfg, 'pytorch', explicit=True)
    assert cfg.train_dataloader.batch_size == 5 and cfg.total_batch_size is None
    cfg = _cfg(total=None, batch=7)
    resolve_total_batch_size(cfg, 'pytorch')
    assert cfg.train_dataloader.batch_size == 7


def test_paper_configs_declare_the_total():
    for name in ('saross/osd.py', 'saross/sos_alos.py', 'saross/sos_sentinel.py', 'dakd/saross_osd.py',
                 'saross/ablations/saross_r34_osd.py'):
        assert Config.fromfile(osp.join(ROOT, 'configs', name)).total_batch_size == 16, name


PROBE = '''
from mmengine.hooks import Hook
from mmengine.dist import get_rank
from mmseg.registry import HOOKS


@HOOKS.register_module()
class BatchProbeHook(Hook):
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        with open(f'{runner.work_dir}/batch_rank{get_rank()}.txt', 'a') as f:
            f.write(f"{len(data_batch['inputs'])}\\n")
'''


@pytest.mark.timeout(900)
def test_two_cpu_processes_share_the_total_batch(synthetic_osd, tmp_path):
    """tools/dist_train.sh CONFIG 2 with total_batch_size=4: each of the 2 gloo processes loads batches of 2."""
    (tmp_path / 'batch_probe.py').write_text(PROBE)
    cfg = tmp_path / 'total4.py'
    root = synthetic_osd
    cfg.write_text(f"_base_ = '{ROOT}/configs/saross/synthetic_tiny.py'\n"
                   "custom_imports = dict(imports=['projects.sar_oilspill', 'batch_probe'],\n"
                   "                      allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='BatchProbeHook')]\n"
                   "total_batch_size = 4\n"
                   f"train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,\n"
                   f"                        dataset=dict(data_root='{root}'))\n"
                   f"val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root='{root}'))\n"
                   "test_dataloader = val_dataloader\n"
                   "train_cfg = dict(max_iters=2, val_interval=100)\n"
                   "default_hooks = dict(checkpoint=dict(interval=100), logger=dict(interval=1))\n")
    wd = str(tmp_path / 'wd')
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29600 + os.getpid() % 1000), OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT, os.environ.get('PYTHONPATH', '')]))
    r = subprocess.run(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', wd],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'total_batch_size=4: 2 process(es) x 2' in r.stdout + r.stderr
    for rank in (0, 1):
        assert open(osp.join(wd, f'batch_rank{rank}.txt')).read().split() == ['2', '2'], rank
    log = open(glob.glob(osp.join(wd, '*', '*.log'))[0]).read()
    assert 'GPU number: 2' in log
