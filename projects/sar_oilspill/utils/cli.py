"""Config handling shared by the command-line tools (train, test, generation)."""
import argparse
import copy
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction

from .atomic import write_json_atomic  # noqa: F401  (its former home; tools import it from here)


def real_train_dataset_cfg(cfg: Config) -> dict:
    """A copy of ``cfg.train_dataloader.dataset``, or of its real part (``real``) for a ``DAKDDataset``."""
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    return ds['real'] if ds.get('type') == 'DAKDDataset' else ds


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir`` and ``--cfg-options`` as in mmseg's tools (for tools that run in one process)."""
    parser.add_argument('--work-dir', help='the directory to save logs, checkpoints and results')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, e.g. train_dataloader.dataset.data_root=data/sos')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options`` and ``--launcher`` as in mmseg's tools."""
    add_config_args(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config``, apply CLI overrides and pick the work dir and the distributed backend.

    * work dir: ``--work-dir`` > ``work_dir`` in the config > ``work_dirs/<config name>``.
    * distributed backend: NCCL needs GPUs; with none visible the process group uses gloo, so
      ``tools/dist_train.sh CONFIG N`` also works on a CPU-only machine. mmengine 0.10.7's ``init_dist`` calls
      ``torch.cuda.set_device`` and wraps the model with ``device_ids=[LOCAL_RANK]``, both of which fail without a
      GPU, so on CPU the gloo process group is created here (the Runner then finds it initialised) and DDP gets
      ``device_ids=None``.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    launcher = getattr(args, 'launcher', 'none')  # tools without --launcher (add_config_args) run in one process
    os.environ.setdefault('LOCAL_RANK', str(getattr(args, 'local_rank', 0)))
    cfg = Config.fromfile(args.config)
    cfg.launcher = launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    import torch
    if not torch.cuda.is_available():
        env_cfg = cfg.setdefault('env_cfg', {})
        env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        if launcher == 'pytorch':
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group(backend='gloo')
            wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                                          find_unused_parameters=cfg.get('find_unused_parameters',
                                                                                         False))
            wrapper['device_ids'] = None
            cfg.model_wrapper_cfg = wrapper
    return cfg


def world_size_of(launcher: str) -> int:
    """Number of processes the launcher started (before the process group exists): torchrun's ``WORLD_SIZE``,
    slurm's ``SLURM_NTASKS``, Open MPI's ``OMPI_COMM_WORLD_SIZE``; 1 without a launcher."""
    var = dict(pytorch='WORLD_SIZE', slurm='SLURM_NTASKS', mpi='OMPI_COMM_WORLD_SIZE').get(launcher)
    return int(os.environ.get(var, 1)) if var else 1


def resolve_total_batch_size(cfg: Config, launcher: str, explicit: bool = False) -> None:
    """Turn ``cfg.total_batch_size`` (the batch summed over all processes, e.g. the paper's 16) into the
    per-process ``train_dataloader.batch_size`` = total / number of processes, so ``tools/dist_train.sh CONFIG G``
    trains with the same total batch for every G.

    Args:
        cfg (Config): the config; unchanged without a ``total_batch_size`` (None: per-process batch as written).
        launcher (str): ``--launcher``.
        explicit (bool): ``train_dataloader.batch_size`` was given on the command line: that per-process batch
            is kept and ``total_batch_size`` set to None (the log says so).

    Raises:
        SystemExit: the total is not a positive multiple of the number of processes.
    """
    total = cfg.get('total_batch_size')
    if total is None or cfg.get('train_dataloader') is None:
        return
    from mmengine.logging import print_log
    world = world_size_of(launcher)
    if explicit:
        print_log(f'train_dataloader.batch_size={cfg.train_dataloader.batch_size} given on the command line: '
                  f'{world} process(es) x {cfg.train_dataloader.batch_size} (total_batch_size={total} ignored)',
                  logger='current')
        cfg.total_batch_size = None
        return
    if not isinstance(total, int) or total < 1 or total % world:
        raise SystemExit(f'total_batch_size={total!r} cannot be split over {world} processes: use a number of '
                         f'processes that divides it, or give the per-process batch with --cfg-options '
                         f'train_dataloader.batch_size=N (then the total is {world} x N)')
    cfg.train_dataloader.batch_size = total // world
    print_log(f'total_batch_size={total}: {world} process(es) x {total // world}', logger='current')


def check_sync_bn(cfg: Config) -> None:
    """Refuse ``sync_bn`` (``--sync-bn``) for a distributed training run without GPUs, before the Runner is built.

    mmengine converts every BatchNorm to ``torch.nn.SyncBatchNorm`` when ``cfg.sync_bn`` is set and the run is
    distributed (a single-process run reverts SyncBN to BN and ignores the key); SyncBatchNorm synchronises CUDA
    tensors only and raises at the first training step on CPU (gloo).
    """
    sync_bn = cfg.get('sync_bn')
    if sync_bn is None or cfg.get('launcher', 'none') == 'none':
        return
    import torch
    if not torch.cuda.is_available():
        raise SystemExit(f'sync_bn={sync_bn!r} (--sync-bn): SyncBatchNorm needs GPUs, and none is visible to this '
                         'distributed CPU run (gloo); leave it out on CPU (--cfg-options sync_bn=None), every '
                         'process then normalises with the statistics of its own batch')


def apply_tta(cfg: Config, config_name: str) -> None:
    """Turn a test config into mmseg's test-time augmentation (what ``tools/test.py --tta`` does): the test set runs
    through ``cfg.tta_pipeline`` (several views per image) and ``cfg.tta_model`` (``SegTTAModel``) wraps the model
    and merges the views' softmax maps. Raises SystemExit naming the config when either key is missing."""
    missing = [key for key in ('tta_pipeline', 'tta_model') if not cfg.get(key)]
    if missing:
        raise SystemExit(f'--tta: {config_name} defines no {" / ".join(missing)} (the dataset bases in '
                         "configs/_base_/datasets define tta_pipeline; mmseg's runtime defines tta_model)")
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def enable_visualization(cfg: Config, show_dir: Optional[str]) -> None:
    """Turn on SegVisualizationHook drawing for every test image.

    Overlays (ground truth | prediction) go to ``<work_dir>/<show_dir>/vis_data/vis_image/`` (a relative
    ``show_dir`` is taken inside the work dir, not the current directory).
    """
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError('--show-dir needs default_hooks.visualization (SegVisualizationHook) in the config')
    hooks['visualization'].update(draw=True, interval=1)
    if show_dir:
        cfg.visualizer['save_dir'] = show_dir if osp.isabs(show_dir) else osp.join(cfg.work_dir, show_dir)


def run_and_close(main) -> None:
    """Run a tool's ``main()`` and then tear down the process group it joined, if any.

    Under ``torchrun`` a process that exits with its gloo/NCCL group still alive can abort in the C++ teardown
    ("terminate called without an active exception", exit status -6) after its work is done, which turns a
    successful ``dist_test.sh`` / ``dist_train.sh`` into a failure; destroying the group first avoids it. The
    ranks meet at a barrier before: one that destroys its group while another still talks to it aborts the same way
    (seen with gloo in ``tests/test_engine/test_dist_collectives.py``, 3 runs in 25 without the barrier).
    """
    main()  # on an error the exception propagates and torchrun stops the other processes
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
