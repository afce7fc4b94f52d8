"""SAR-JointNet's loops and the DAKD pipeline through the user's command lines, on tiny budgets.

stage 1 -> 2 -> 3 (tools/train.py) -> resume -> generate (tools/generate_daug.py, 1 and 2 processes, resume after
an interruption) -> DAKD student (tools/train.py) on the real SOS subset.
"""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from projects.sar_oilspill.engine import sample_seed, shard_indices, stage_of_iter

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
JN_CFG = 'configs/sar_jointnet/sos_alos_tiny_cpu.py'
DAKD_CFG = 'configs/dakd/saross_sos_alos_tiny_cpu.py'


def _env(**extra):
    # CPU runs also on a GPU host (CUDA_VISIBLE_DEVICES=''): the 2-process runs use gloo instead of NCCL, whose rank 1
    # would need a second GPU, and the 1- and 2-process generations being compared run on the same device
    return dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', PYTHON=sys.executable,
                CUDA_VISIBLE_DEVICES='', **extra)


def _run(cmd, ok=True, **extra_env):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env(**extra_env))
    out = r.stdout + r.stderr
    if ok:
        assert r.returncode == 0, out[-4000:]
    else:
        assert r.returncode != 0, out[-4000:]
    return out


def _train_opts(root, iters=(2, 2, 2)):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}', f'train_cfg.stage_iters={iters}',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.max_keep_ckpts=-1', 'default_hooks.logger.interval=1']


def _logged_lrs(out):
    """{iteration: learning rate} from mmengine's per-iteration log lines of a 6-iteration run."""
    return {int(i): float(lr) for i, lr in re.findall(r'Iter\(train\) \[\s*(\d+)/6\]\s+lr: (\S+)', out)}


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# ---------------------------------------------------------------- pure helpers
def test_stage_of_iter():
    stages = [stage_of_iter(i, (2, 3, 1)) for i in range(7)]
    assert stages == [1, 1, 2, 2, 2, 3, 3]
    assert [stage_of_iter(i, (0, 0, 2)) for i in range(2)] == [3, 3]
    assert [stage_of_iter(i, (2, 0, 1)) for i in range(3)] == [1, 1, 3]


def test_shards_are_disjoint_and_complete():
    for world in (1, 2, 3, 5):
        shards = [shard_indices(11, r, world) for r in range(world)]
        flat = sorted(i for s in shards for i in s)
        assert flat == list(range(11))
    with pytest.raises(ValueError):
        shard_indices(4, 2, 2)
    assert sample_seed(0, 5) == 5 and sample_seed(2, 5) == 2 * 1_000_003 + 5


def test_train_loop_rejects_bad_stage_iters():
    from projects.sar_oilspill.engine import JointNetTrainLoop
    for bad in [(1, 2), (0, 0, 0), (1, -1, 1)]:
        with pytest.raises(ValueError, match='stage_iters'):
            JointNetTrainLoop(runner=None, dataloader=None, stage_iters=bad)


def test_stage3_marker_becomes_the_first_stage3_iteration():
    """The config's milestones='stage3' is resolved from stage_iters; mmengine's MultiStepLR then lowers the
    learning rate for exactly the iterations of stage 3 (checked by stepping it as ParamSchedulerHook does)."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    from projects.sar_oilspill.engine.jointnet_train_loop import resolve_stage_milestones
    cfg = [dict(type='MultiStepLR', by_epoch=False, milestones='stage3', gamma=0.1), dict(type='ConstantLR')]
    resolved = resolve_stage_milestones(cfg, (2, 3, 4))
    assert resolved[0]['milestones'] == [5] and cfg[0]['milestones'] == 'stage3'  # input left as it was
    assert resolved[1] == cfg[1]
    assert resolve_stage_milestones({'type': 'MultiStepLR', 'by_epoch': False, 'milestones': 'stage3'},
                                    (0, 0, 7))['milestones'] == [0]
    per_optimizer = resolve_stage_milestones({'gen': cfg, 'disc': []}, (1, 1, 1))
    assert per_optimizer['gen'][0]['milestones'] == [2] and per_optimizer['disc'] == []
    assert resolve_stage_milestones(None, (1, 1, 1)) is None
    with pytest.raises(ValueError, match='by_epoch=False'):
        resolve_stage_milestones([dict(type='MultiStepLR', milestones='stage3')], (1, 1, 1))

    stage_iters = (2, 3, 4)
    optim = OptimWrapper(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3))
    sched = PARAM_SCHEDULERS.build(resolve_stage_milestones(cfg[:1], stage_iters)[0],
                                   default_args=dict(optimizer=optim))
    lrs = []
    for it in range(sum(stage_iters)):
        lrs.append(optim.param_groups[0]['lr'])  # the learning rate iteration `it` trains with
        sched.step()  # ParamSchedulerHook.after_train_iter
    expected = [1e-3 if stage_of_iter(it, stage_iters) < 3 else 1e-4 for it in range(sum(stage_iters))]
    assert lrs == pytest.approx(expected)


# ---------------------------------------------------------------- end to end
@pytest.mark.timeout(900)
def test_jointnet_stages_resume_generate_and_dakd(sos_mini, tmp_path):
    wd = str(tmp_path / 'jn')
    out = _run([sys.executable, 'tools/train.py', JN_CFG, '--work-dir', wd, *_train_opts(sos_mini)])
    assert 'stage 1 -> 2' in out and 'stage 2 -> 3' in out and 'Label-Net initialised from SAR-Net' in out
    s1, s2, s3 = (_state(osp.join(wd, f'iter_{i}.pth')) for i in (2, 4, 6))
    assert [int(s['state_dict']['training_stage']) for s in (s1, s2, s3)] == [1, 2, 3]

    def params(state, prefix):
        return {k: v for k, v in state['state_dict'].items() if k.startswith(prefix)}

    # stage 2: SAR-Net frozen, Label-Net and both exchange directions trained
    sar1, sar2, sar3 = (params(s, 'joint.sar_net.') for s in (s1, s2, s3))
    assert sar1 and all(torch.equal(sar1[k], sar2[k]) for k in sar1)
    assert any(not torch.equal(sar2[k], sar3[k]) for k in sar2)  # stage 3 trains everything
    for prefix in ('joint.exchange_to_sar.', 'joint.exchange_to_label.'):
        ex1, ex2 = params(s1, prefix), params(s2, prefix)
        assert ex1 and all(float(v.abs().max()) == 0 for v in ex1.values())  # zero-initialised, untouched in stage 1
        assert any(float(v.abs().max()) > 0 for v in ex2.values())
    # stage 3 lowers the learning rate once (tiny config: 1e-3 -> 1e-4): iterations 1-4 (stages 1-2) train at 1e-3,
    # 5-6 (stage 3) at 1e-4, as logged by mmengine for each iteration
    assert _logged_lrs(out) == pytest.approx({1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 1e-3, 5: 1e-4, 6: 1e-4})
    # a checkpoint holds the learning rate of the iteration that follows it (the stage-2 one at iter_4 is stage 3's)
    lrs = [s['optimizer']['param_groups'][0]['lr'] for s in (s1, s2, s3)]
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-4])
    assert [s['param_schedulers'][0]['last_step'] for s in (s1, s2)] == [2, 4]  # the scheduler's state is saved

    assert 'learning rate 0.0001' in out  # logged at the stage 2 -> 3 switch: the scheduler has already acted
    # resume from the stage-2 checkpoint: stage restored, no second Label-Net initialisation, LR reduced once
    os.remove(osp.join(wd, 'iter_6.pth'))
    with open(osp.join(wd, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(wd, 'iter_4.pth'))
    out = _run([sys.executable, 'tools/train.py', JN_CFG, '--work-dir', wd, '--resume', *_train_opts(sos_mini)])
    assert 'resuming at 4' in out and 'Label-Net initialised' not in out and 'stage 2 -> 3' in out
    s3b = _state(osp.join(wd, 'iter_6.pth'))
    assert s3b['optimizer']['param_groups'][0]['lr'] == pytest.approx(1e-4)  # not lowered a second time
    assert _logged_lrs(out) == pytest.approx({5: 1e-4, 6: 1e-4})
    assert int(s3b['state_dict']['training_stage']) == 3

    # a stage-1 checkpoint cannot generate labels
    ckpt1 = osp.join(wd, 'iter_2.pth')
    out = _run([sys.executable, 'tools/generate_daug.py', JN_CFG, ckpt1, '--out-dir', str(tmp_path / 'x'),
                '--work-dir', wd, '--num-samples', '2'], ok=False)
    assert 'stage 1' in out

    # generate 8 tiles (1 process), 3 DDIM steps
    ckpt = osp.join(wd, 'iter_6.pth')
    daug = str(tmp_path / 'daug')
    gen = [sys.executable, 'tools/generate_daug.py', JN_CFG, ckpt, '--work-dir', wd, '--num-samples', '8',
           '--batch-size', '3', '--steps', '3']
    out = _run(gen + ['--out-dir', daug])
    assert 'generating 8' in out
    names = sorted(osp.basename(p)[:-4] for p in glob.glob(osp.join(daug, 'images', '*.png')))
    assert names == [f's{i:06d}' for i in range(8)]
    manifest = json.load(open(osp.join(daug, 'manifest.json')))
    assert manifest['complete'] and manifest['num_classes'] == 2 and manifest['size'] == [64, 64]
    # class names passed to the loop by generate_daug.py (those of the training set); steps: --steps over test_cfg
    assert manifest['classes'] == ['background', 'oil_spill'] and manifest['num_inference_steps'] == 3
    assert [s['seed'] for s in manifest['samples']] == list(range(8))
    grid = cv2.imread(osp.join(daug, 'grid.png'))  # 8 samples, image | overlay, 4 per row (generation_cfg.grid)
    assert grid is not None and grid.shape[0] > 2 * 64 and grid.shape[1] > 8 * 64
    logits = np.load(osp.join(daug, 'logits', 's000003.npy'))
    assert logits.shape == (2, 64, 64) and logits.dtype == np.float16 and np.isfinite(logits).all()
    assert cv2.imread(osp.join(daug, 'images', 's000003.png'), cv2.IMREAD_UNCHANGED).shape == (64, 64)
    originals = {n: (cv2.imread(osp.join(daug, 'images', n + '.png'), cv2.IMREAD_UNCHANGED),
                     np.load(osp.join(daug, 'logits', n + '.npy'))) for n in names}

    # nothing left to do on a second run; an interrupted run (half pairs, temp files) is completed
    assert 'generating 0' in _run(gen + ['--out-dir', daug])
    os.remove(osp.join(daug, 'logits', 's000005.npy'))
    os.remove(osp.join(daug, 'images', 's000006.png'))
    open(osp.join(daug, 'images', 's000007.png.tmp-999'), 'wb').close()
    out = _run(gen + ['--out-dir', daug])
    assert 'generating 2' in out
    for n in ('s000005', 's000006'):  # the same seed gives the same sample
        img = cv2.imread(osp.join(daug, 'images', n + '.png'), cv2.IMREAD_UNCHANGED)
        assert np.abs(img.astype(int) - originals[n][0].astype(int)).max() <= 1
        np.testing.assert_allclose(np.load(osp.join(daug, 'logits', n + '.npy')).astype(np.float32),
                                   originals[n][1].astype(np.float32), atol=2e-2)
    # other settings into the same folder are refused
    out = _run(gen[:-2] + ['--steps', '4', '--out-dir', daug], ok=False)
    assert 'num_inference_steps' in out and 'other settings' in out

    # 2 processes: disjoint shards, together the same samples as one process
    daug2 = str(tmp_path / 'daug2')
    out = _run(['bash', 'tools/dist_generate.sh', JN_CFG, ckpt, '2', '--work-dir', wd, '--num-samples', '8',
                '--batch-size', '3', '--steps', '3', '--out-dir', daug2],
               PORT=str(29600 + os.getpid() % 300))
    # rank 0 logs its shard (mmengine keeps other ranks' INFO lines quiet); the total is gathered from both
    assert 'rank 0/2: 4 samples in shard' in out and 'generated 8 samples' in out
    for n in names:
        img = cv2.imread(osp.join(daug2, 'images', n + '.png'), cv2.IMREAD_UNCHANGED)
        assert np.abs(img.astype(int) - originals[n][0].astype(int)).max() <= 1, n
    assert json.load(open(osp.join(daug2, 'manifest.json')))['complete']

    # DAKD: the CPU-sized SAROSS-Net on real tiles + 4x4 mosaics of the generated tiles (CE + KD + Dice)
    dakd_wd = str(tmp_path / 'dakd')
    out = _run([sys.executable, 'tools/train.py', DAKD_CFG, '--work-dir', dakd_wd, '--cfg-options',
                f'train_dataloader.dataset.real.data_root={sos_mini}',
                f'train_dataloader.dataset.synthetic.data_root={daug}', f'val_dataloader.dataset.data_root={sos_mini}',
                'val_dataloader.dataset.indices=2', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=4',
                'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
                'default_hooks.logger.interval=1'])
    assert 'loss_kd' in out and 'mIoU' in out and '4x4 mosaics' in out
    assert osp.isfile(osp.join(dakd_wd, 'iter_2.pth'))
    shutil.rmtree(wd, ignore_errors=True)


@pytest.mark.timeout(600)
def test_jointnet_two_process_training_keeps_replicas_in_sync(sos_mini, tmp_path):
    # DDP only synchronises the parameters that required grad when it was built: the loop wraps the model again
    # at every stage switch and checks (checksums gathered from every process) that the weights agree.
    wd = str(tmp_path / 'dist')
    out = _run(['bash', 'tools/dist_train.sh', JN_CFG, '2', '--work-dir', wd, *_train_opts(sos_mini)],
               PORT=str(29900 + os.getpid() % 90))
    for when in ('at the end of stage 1', 'at the end of stage 2', 'at the end of training'):
        assert f'weights identical on all 2 processes {when}' in out
    assert int(_state(osp.join(wd, 'iter_6.pth'))['state_dict']['training_stage']) == 3
