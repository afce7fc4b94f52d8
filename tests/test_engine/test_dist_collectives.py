"""Collectives and per-rank randomness in 2 CPU processes (gloo), checked without a GPU.

NCCL, the backend of every GPU run, serves CUDA tensors only: ``torch.distributed.all_gather`` on CPU tensors raises
"No backend type associated with device type cpu". mmengine's helpers (``mmengine.dist.all_gather`` ...) move the
tensors to the group's communication device (``mmengine.dist.get_comm_device``: CUDA under NCCL, CPU under gloo)
and back. The workers below emulate NCCL on CPU: the raw ``torch.distributed`` collectives refuse CPU tensors with
NCCL's message, while mmengine's helpers, which ask the group for its device, reach the gloo transport. A collective
written as a raw ``torch.distributed`` call on CPU tensors therefore fails here as it fails under NCCL on GPUs
(``test_cuda_only_group_refuses_cpu_tensors`` shows that message coming from a real CUDA-only process group).

The same 2 processes check that SAR-JointNet's configs make the ranks draw different diffusion timesteps and noise
(``randomness.diff_rank_seed``) while generation, seeded per sample, stays the same on every rank.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import types

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
JN_CONFIGS = ['configs/sar_jointnet/osd.py', 'configs/sar_jointnet/sos_alos.py', 'configs/sar_jointnet/sos_sentinel.py',
              'configs/sar_jointnet/sos_alos_tiny_cpu.py', 'configs/sar_jointnet/synthetic_tiny_cpu.py']
WORLD = 2
NCCL_CPU_ERROR = 'No backend type associated with device type cpu'
# tensor collectives of torch.distributed that take the tensors' device from their arguments
COLLECTIVES = ('all_gather', 'all_gather_into_tensor', 'all_reduce', 'broadcast', 'gather', 'reduce', 'scatter',
               'reduce_scatter', 'reduce_scatter_tensor', 'all_to_all', 'all_to_all_single')


def _hidden_gpu_env(**extra):
    """Environment of a CPU-only child process, also on a GPU host (CUDA_VISIBLE_DEVICES='' hides the GPUs)."""
    return dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
                PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get('PYTHONPATH')) if p), **extra)


def _spawn(mode, tmp_path, world=WORLD, timeout=300):
    store = str(tmp_path / 'store')
    procs = [subprocess.Popen([sys.executable, __file__, mode, str(rank), str(world), store, str(tmp_path)],
                              cwd=ROOT, env=_hidden_gpu_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for rank in range(world)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    return [json.load(open(tmp_path / f'rank{r}.json')) for r in range(world)]


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    return _spawn('main', tmp_path_factory.mktemp('dist'))


# ------------------------------------------------------------------------------------------------ tests
def test_cuda_only_group_refuses_cpu_tensors(tmp_path):
    # the premise of the emulation: a process group with a backend for CUDA only (as NCCL) refuses CPU tensors
    (res, ) = _spawn('cuda_only_group', tmp_path, world=1)
    assert NCCL_CPU_ERROR in res['raw_all_gather']


def test_replica_check_survives_an_nccl_like_group(two_ranks):
    for res in two_ranks:
        # the emulation refuses raw CPU collectives (what the old replica check did) ...
        assert NCCL_CPU_ERROR in res['raw_all_gather'], res
        # ... and the replica check passes with identical weights and fails when they differ
        assert res['agree'] == 'ok', res
        assert 'weights differ between processes' in res['differ'], res
    assert 'weights identical on all 2 processes' in two_ranks[0]['log']


def test_ranks_draw_different_timesteps_and_noise(two_ranks):
    r0, r1 = two_ranks
    # without diff_rank_seed (mmengine's default) both ranks draw the same: two GPUs do the work of one
    assert r0['draws_same_seed'] == r1['draws_same_seed']
    # the SAR-JointNet configs give every rank its own timesteps and noise
    assert r0['draws']['t'] != r1['draws']['t']
    assert r0['draws']['noise'] != r1['draws']['noise']


def test_generation_does_not_depend_on_the_rank_seed(two_ranks):
    # D_aug samples are seeded per sample, not by the (now rank-dependent) global RNG
    r0, r1 = two_ranks
    assert r0['sample'] == r1['sample']


def test_sync_bn_is_refused_clearly_without_gpus(tmp_path):
    # torch.nn.SyncBatchNorm synchronises CUDA tensors only: a CPU (gloo) run with --sync-bn stops before training
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = _hidden_gpu_env(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    r = subprocess.run([sys.executable, 'tools/train.py', 'configs/saross/synthetic_tiny.py', '--launcher', 'pytorch',
                        '--sync-bn', '--work-dir', str(tmp_path / 'wd')], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0
    assert "sync_bn='torch' (--sync-bn): SyncBatchNorm needs GPUs" in r.stderr, r.stderr[-3000:]


@pytest.mark.parametrize('config', JN_CONFIGS)
def test_jointnet_configs_seed_each_rank(config):
    from mmengine.config import Config
    assert Config.fromfile(osp.join(ROOT, config)).randomness == dict(seed=0, diff_rank_seed=True)


# ------------------------------------------------------------------------------------------------ workers
def _nccl_like(dist):
    """Make the raw ``torch.distributed`` collectives refuse CPU tensors as NCCL does; mmengine's helpers keep
    the real ones, on the device ``get_comm_device`` gives for the group (CPU under gloo)."""
    import mmengine.dist.dist as mm_dist
    import torch

    real = {name: getattr(dist, name) for name in COLLECTIVES if hasattr(dist, name)}

    def refusing(name):
        def collective(*args, **kwargs):
            tensors = []
            for a in list(args) + list(kwargs.values()):
                items = a if isinstance(a, (list, tuple)) else [a]
                tensors += [t for t in items if isinstance(t, torch.Tensor)]
            if any(t.device.type == 'cpu' for t in tensors):
                raise RuntimeError(NCCL_CPU_ERROR)
            return real[name](*args, **kwargs)
        return collective

    transport = types.ModuleType('torch_distributed_for_mmengine')
    transport.__getattr__ = lambda name: real[name] if name in real else getattr(dist, name)
    mm_dist.torch_dist = transport
    for name in real:
        setattr(dist, name, refusing(name))


def _replica_check(dist, rank, result):
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from projects.sar_oilspill.engine import JointNetTrainLoop

    class Joint(torch.nn.Module):  # what JointNetTrainLoop.joint_model needs
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def set_stage(self, stage):
            pass

        def init_label_net_from_sar_net(self):
            pass

    class Logger:
        lines = []

        def info(self, msg, *args):
            self.lines.append(msg % args if args else msg)

    torch.manual_seed(0)
    model = Joint()
    runner = types.SimpleNamespace(model=DistributedDataParallel(model), logger=Logger())
    loop = JointNetTrainLoop.__new__(JointNetTrainLoop)
    loop._runner = runner
    _nccl_like(dist)
    try:
        dist.all_gather([torch.zeros(2) for _ in range(WORLD)], torch.ones(2))
        result['raw_all_gather'] = 'ok'
    except RuntimeError as e:
        result['raw_all_gather'] = str(e)
    try:
        loop._check_replicas_agree('after the test step')
        result['agree'] = 'ok'
    except Exception as e:  # noqa: BLE001 (reported to the test)
        result['agree'] = f'{type(e).__name__}: {e}'
    with torch.no_grad():
        model.conv.weight[0, 0, 0, 0] += rank
    try:
        loop._check_replicas_agree('after a rank-dependent change')
        result['differ'] = 'no error'
    except Exception as e:  # noqa: BLE001
        result['differ'] = f'{type(e).__name__}: {e}'
    result['log'] = '\n'.join(Logger.lines)


def _draws(model, randomness):
    """Timesteps and noise of one training step of ``model`` after mmengine seeds the process as the Runner does."""
    import torch
    from mmengine.runner import set_random_seed
    set_random_seed(**randomness)
    x0 = torch.zeros(2, 1, 16, 16)
    _, _, xt_img, _, t = model._noisy_batch(x0, None)
    return dict(t=t.tolist(), noise=[round(float(v), 6) for v in xt_img.flatten()[:8]])


def _randomness(rank, result):
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import projects.sar_oilspill  # noqa: F401 (registers SARJointNet)
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/sar_jointnet/sos_alos_tiny_cpu.py'))
    torch.manual_seed(0)  # same weights on every rank (as DDP's broadcast makes them)
    model = MODELS.build(cfg.model)
    result['draws_same_seed'] = _draws(model, dict(seed=0))
    result['draws'] = _draws(model, cfg.randomness)
    model.eval()
    out = model.sample(seeds=[11], num_inference_steps=2, eta=1.0, size=(16, 16))
    result['sample'] = [round(float(v), 5) for v in out.image.flatten()[::37]]


def _main(argv):
    mode, rank, world, store, out_dir = argv[0], int(argv[1]), int(argv[2]), argv[3], argv[4]
    sys.path.insert(0, ROOT)
    import datetime

    import torch.distributed as dist
    result = {}
    backend = 'cuda:gloo' if mode == 'cuda_only_group' else 'gloo'
    dist.init_process_group(backend, init_method=f'file://{store}', rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        if mode == 'cuda_only_group':
            import torch
            try:
                dist.all_gather([torch.zeros(2)], torch.ones(2))
                result['raw_all_gather'] = 'ok'
            except RuntimeError as e:
                result['raw_all_gather'] = str(e)
        else:
            _randomness(rank, result)
            _replica_check(dist, rank, result)  # last: it replaces torch.distributed's collectives
        with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(result, f)
        if world > 1:  # (a one-rank CUDA-only group has no CPU barrier, and nothing to wait for)
            # every rank gets here before any tears its group down: a gloo rank that destroys its group while the
            # other still has traffic on it aborts in C++ ("terminate called without an active exception"), in
            # 3 of 25 runs of this worker pair before this barrier, 0 of 50 with it
            dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    _main(sys.argv[1:])
