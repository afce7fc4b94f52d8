"""Checkpoints survive a SIGKILL during and right after their write, resume exactly, and are never non-finite.

A real ``tools/train.py`` run (tiny SegFormer-B0 on the synthetic fixture, checkpoints every 2 iterations,
``max_keep_ckpts=1``, validation every 2 iterations) is killed by ``ckpt_faults.CheckpointFaultHook``; the
in-process tests compare per-iteration losses (full precision, ``ckpt_faults.LossRecorderHook``).
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.abspath(osp.join(HERE, '..', '..'))
BASE = osp.join(ROOT, 'configs', 'baselines', 'segformer_b0_synthetic.py')
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import ckpt_faults  # noqa: E402,F401  (registers the test hooks for the in-process runs)
from projects.sar_oilspill.engine.checkpoint_hook import (  # noqa: E402
    AtomicCheckpointHook, NonFiniteCheckpointError, nonfinite_tensors, remove_stale_temporaries,
    write_last_checkpoint)


def _cfg(data_root, work_dir, recorder, max_iters=4, extra_hooks=(), name='run', **options):
    cfg = Config.fromfile(BASE)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{name}_{os.getpid()}'  # in process: one message hub / logger per run
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': data_root, 'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root, 'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'val_dataloader.dataset.indices': 2, 'train_cfg.max_iters': max_iters, 'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1,
        'env_cfg.dist_cfg.backend': 'gloo',
        # a quarter-size SegFormer-B0 (still with drop path and dropout: the losses depend on torch's generator)
        'model.backbone.embed_dims': 16, 'model.backbone.num_layers': [1, 1, 1, 1],
        'model.decode_head.in_channels': [16, 32, 80, 128], 'model.decode_head.channels': 32, **options})
    cfg.custom_imports = dict(imports=['projects.sar_oilspill', 'ckpt_faults'], allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='LossRecorderHook', path=str(recorder)),
                                                             *extra_hooks]
    return cfg


def _losses(path):
    return {d['iter']: d['loss'] for d in map(json.loads, open(path))} if osp.isfile(path) else {}


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def _train(cfg, resume=False):
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_default_configs_use_the_atomic_hook():
    cfg = Config.fromfile(BASE)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    for path in ('configs/baselines/unet_osd.py', 'configs/saross/osd.py', 'configs/sar_jointnet/synthetic_tiny_cpu.py',
                 'configs/baselines/segformer_b0_osd.py'):
        assert Config.fromfile(osp.join(ROOT, path)).default_hooks.checkpoint.type == 'AtomicCheckpointHook', path


def test_sigkill_during_and_right_after_a_checkpoint_write(synthetic_osd, tmp_path):
    """Run 1 dies while iter_4.pth is half written, run 2 (--resume) dies right after iter_4.pth is complete,
    run 3 (--resume) finishes. The losses of iterations 3-4 of runs 1 and 2 (separate processes, run 1 validated
    after iteration 2, run 2 resumed there) are bit-identical."""
    wd = tmp_path / 'wd'
    losses1, losses2, losses3 = (str(tmp_path / f'losses{i}.jsonl') for i in (1, 2, 3))
    cfg = _cfg(synthetic_osd, wd, losses1, max_iters=6, extra_hooks=[dict(type='CheckpointFaultHook')])
    cfg.dump(str(tmp_path / 'cfg.py'))
    recorder_index = [h['type'] for h in cfg.custom_hooks].index('LossRecorderHook')

    def run(fault, recorder, resume):
        env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', CKPT_FAULT=fault,
                   PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]))
        cmd = [sys.executable, 'tools/train.py', str(tmp_path / 'cfg.py'), '--work-dir', str(wd), '--cfg-options',
               f'custom_hooks.{recorder_index}.path={recorder}'] + (['--resume'] if resume else [])
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)

    def ckpts():
        return sorted(os.listdir(wd))

    # 1. killed while iter_4.pth is written: iter_2.pth intact and still named by last_checkpoint
    r = run('during_write:4', losses1, resume=False)
    assert r.returncode == -9, r.stderr[-3000:]
    names = ckpts()
    assert 'iter_2.pth' in names and 'iter_4.pth' not in names, names
    (tmp,) = [n for n in names if n.startswith('iter_4.pth.tmp-')]
    with pytest.raises(Exception):
        _load(str(wd / tmp))  # the kill did hit a partial write
    assert _load(str(wd / 'iter_2.pth'))['meta']['iter'] == 2
    assert open(wd / 'last_checkpoint').read() == str(wd / 'iter_2.pth')
    assert sorted(_losses(losses1)) == [1, 2, 3, 4]

    # 2. --resume from iteration 2, killed right after iter_4.pth is complete
    r = run('after_write:4', losses2, resume=True)
    assert r.returncode == -9, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert 'resumed epoch: 0, iter: 2' in out and 'partial checkpoint of an interrupted run' in out
    assert [n for n in ckpts() if '.pth' in n] == ['iter_4.pth']  # iter_2.pth deleted after, the partial file removed
    assert _load(str(wd / 'iter_4.pth'))['meta']['iter'] == 4
    assert open(wd / 'last_checkpoint').read() == str(wd / 'iter_4.pth')
    assert _losses(losses2) == {i: _losses(losses1)[i] for i in (3, 4)}

    # 3. --resume from iteration 4 to the end
    r = run('', losses3, resume=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 4' in r.stdout + r.stderr
    assert sorted(_losses(losses3)) == [5, 6]
    assert [n for n in ckpts() if '.pth' in n] == ['iter_6.pth']
    assert open(wd / 'last_checkpoint').read() == str(wd / 'iter_6.pth')


def test_resume_reproduces_the_uninterrupted_losses(synthetic_osd, tmp_path):
    """4 iterations in one go == 2 iterations, then --resume to 4 (validation and a best checkpoint after
    iteration 2). Negative control: without restoring the generator states the losses differ."""
    opts = {'default_hooks.checkpoint.save_best': 'mIoU', 'default_hooks.checkpoint.rule': 'greater'}
    full = str(tmp_path / 'full.jsonl')
    _train(_cfg(synthetic_osd, tmp_path / 'full', full, max_iters=4, name='full', **opts))
    ref = _losses(full)
    assert sorted(ref) == [1, 2, 3, 4]
    assert len(glob.glob(str(tmp_path / 'full' / 'best_mIoU_iter_*.pth'))) == 1

    part = str(tmp_path / 'part.jsonl')
    _train(_cfg(synthetic_osd, tmp_path / 'part', part, max_iters=2, name='part', **opts))
    assert _losses(part) == {i: ref[i] for i in (1, 2)}
    shutil.copytree(tmp_path / 'part', tmp_path / 'norng')
    (tmp_path / 'norng' / 'last_checkpoint').write_text(str(tmp_path / 'norng' / 'iter_2.pth'))
    rng = _load(str(tmp_path / 'part' / 'iter_2.pth'))['meta']['rng_states']
    assert rng['world_size'] == 1 and set(rng['ranks'][0]) >= {'python', 'numpy', 'torch'}

    resumed = str(tmp_path / 'resumed.jsonl')
    _train(_cfg(synthetic_osd, tmp_path / 'part', resumed, max_iters=4, name='resumed', **opts), resume=True)
    assert _losses(resumed) == {i: ref[i] for i in (3, 4)}

    norng = str(tmp_path / 'norng.jsonl')
    _train(_cfg(synthetic_osd, tmp_path / 'norng', norng, max_iters=3, name='norng',
                **{'default_hooks.checkpoint.resume_rng_states': False, **opts}), resume=True)
    assert _losses(norng)[3] != ref[3]


def test_non_finite_model_state_is_never_saved(synthetic_osd, tmp_path):
    wd = tmp_path / 'wd'
    cfg = _cfg(synthetic_osd, wd, tmp_path / 'l.jsonl', max_iters=2, name='nan',
               extra_hooks=[dict(type='PoisonWeightsHook', iter=2, num=3)],
               **{'default_hooks.checkpoint.interval': 1, 'train_cfg.val_interval': 100})
    with pytest.raises(NonFiniteCheckpointError) as err:
        _train(cfg)
    msg = str(err.value)
    assert 'iter_2.pth at iteration 2' in msg and '1 of ' in msg and '(3 of ' in msg, msg
    assert sorted(n for n in os.listdir(wd) if '.pth' in n or n.startswith('last')) == ['iter_1.pth',
                                                                                         'last_checkpoint']
    assert open(wd / 'last_checkpoint').read() == str(wd / 'iter_1.pth')
    assert _load(str(wd / 'iter_1.pth'))['meta']['iter'] == 1


def test_helpers(tmp_path):
    assert nonfinite_tensors({'a': torch.zeros(3), 'b': torch.tensor([1.0, float('inf'), float('nan')]),
                              'c': torch.zeros(2, dtype=torch.long)}) == [('b', 2, 3)]
    write_last_checkpoint(str(tmp_path), 'x/iter_3.pth')
    assert open(tmp_path / 'last_checkpoint').read() == 'x/iter_3.pth'
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    for name in (f'iter_4.pth.tmp-{dead.pid}', f'last_checkpoint.tmp-{dead.pid}', f'iter_5.pth.tmp-{os.getpid()}',
                 'iter_6.pth', 'notes.tmp-1'):
        (tmp_path / name).write_text('x')
    assert remove_stale_temporaries(str(tmp_path)) == sorted([f'iter_4.pth.tmp-{dead.pid}',
                                                             f'last_checkpoint.tmp-{dead.pid}'])
    assert sorted(os.listdir(tmp_path)) == sorted(['last_checkpoint', f'iter_5.pth.tmp-{os.getpid()}', 'iter_6.pth',
                                                   'notes.tmp-1'])
    with pytest.raises(ValueError, match='local directory'):
        from projects.sar_oilspill.engine.checkpoint_hook import _check_local
        _check_local('https://example.com/work_dir')
    assert AtomicCheckpointHook(interval=2).resume_rng_states
