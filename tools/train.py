"""Train a segmentor (or SAR-JointNet) from a config, as mmseg's tools/train.py.

Examples:
    python tools/train.py configs/saross/osd.py
    python tools/train.py configs/baselines/unet_sos_alos.py --work-dir work_dirs/unet --cfg-options \
        train_dataloader.dataset.data_root=../data/sos
    bash tools/dist_train.sh configs/saross/osd.py 2
"""
import argparse
import logging
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmseg.registry import RUNNERS  # noqa: E402

from projects.sar_oilspill.utils.cli import (add_common_args, check_sync_bn, load_config,  # noqa: E402
                                             resolve_total_batch_size, run_and_close)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', default=False, help='automatic mixed precision (GPU)')
    parser.add_argument('--sync-bn', action='store_const', const='torch', default=None,
                        help='multi-GPU runs: synchronise BatchNorm statistics over all processes '
                             "(torch.nn.SyncBatchNorm, mmengine's sync_bn='torch'; GPUs only)")
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    # total_batch_size (the paper's batch over all processes) -> per-process train_dataloader.batch_size
    resolve_total_batch_size(cfg, args.launcher, explicit='train_dataloader.batch_size' in (args.cfg_options or {}))
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (AmpOptimWrapper); none is visible')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config', logger='current', level=logging.WARNING)
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.sync_bn:
        cfg.sync_bn = args.sync_bn
    check_sync_bn(cfg)
    cfg.resume = args.resume
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    run_and_close(main)
