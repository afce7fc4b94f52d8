"""The user's command lines, end to end, on tiny budgets."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _run(cmd, **kw):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, **kw)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _opts(root, iters=2, batch=2, val_images=4):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
            f'train_dataloader.batch_size={batch}', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', f'val_dataloader.dataset.indices={val_images}',
            f'test_dataloader.dataset.indices={val_images}', 'default_hooks.logger.interval=1']


def test_train_then_test_baseline_on_real_sos_palsar(sos_mini, tmp_path):
    cfg = 'configs/baselines/segformer_b0_sos_alos.py'
    wd = str(tmp_path / 'wd')
    out = _run([sys.executable, 'tools/train.py', cfg, '--work-dir', wd, *_opts(sos_mini)])
    assert 'mIoU' in out
    ckpt = osp.join(wd, 'iter_2.pth')
    assert osp.isfile(ckpt)
    _run([sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', wd, '--show-dir', 'vis', *_opts(sos_mini)])
    (result,) = glob.glob(osp.join(wd, 'test_metrics_*.json'))
    metrics = json.load(open(result))['metrics']
    for key in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc', 'IoU.oil_spill', 'IoU.background'):
        assert key in metrics
    assert 0 <= metrics['aAcc'] <= 100
    assert len(glob.glob(osp.join(wd, 'vis', '**', '*.png'), recursive=True)) == 4


def test_missing_data_root_fails_clearly(tmp_path):
    r = subprocess.run([sys.executable, 'tools/train.py', 'configs/baselines/segformer_b0_sos_alos.py', '--work-dir',
                        str(tmp_path), *_opts(str(tmp_path / 'nowhere'))], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0
    assert 'nowhere' in r.stderr and 'does not exist' in r.stderr


@pytest.mark.timeout(900)
def test_distributed_training_two_cpu_processes(synthetic_osd, tmp_path):
    wd = str(tmp_path / 'dist')
    # CPU processes (gloo) also on a GPU host: with a GPU visible the tools pick NCCL and rank 1 would need a 2nd GPU
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29500 + os.getpid() % 1000), OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore', CUDA_VISIBLE_DEVICES='')
    r = subprocess.run(['bash', 'tools/dist_train.sh', 'configs/baselines/segformer_b0_synthetic.py', '2',
                        '--work-dir', wd, *_opts(synthetic_osd, iters=2, batch=1)],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = open(glob.glob(osp.join(wd, '*', '*.log'))[0]).read()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert "dist_cfg: {'backend': 'gloo'}" in log
    assert osp.isfile(osp.join(wd, 'iter_2.pth'))
    # and the 2-process test of that checkpoint (tools/dist_test.sh): one metrics file, from rank 0
    twd = str(tmp_path / 'dist_test')
    r = subprocess.run(['bash', 'tools/dist_test.sh', 'configs/baselines/segformer_b0_synthetic.py',
                        osp.join(wd, 'iter_2.pth'), '2', '--work-dir', twd, *_opts(synthetic_osd, iters=2, batch=1)],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (result,) = glob.glob(osp.join(twd, 'test_metrics_*.json'))
    assert 0 <= json.load(open(result))['metrics']['mIoU'] <= 100
