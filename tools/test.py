"""Evaluate a checkpoint, as mmseg's tools/test.py, and save the metric table as JSON in the work dir.

Examples:
    python tools/test.py configs/saross/osd.py work_dirs/osd/iter_20000.pth
    python tools/test.py CONFIG CKPT --show-dir vis --out preds
    python tools/test.py CONFIG CKPT --tta     # flip test-time augmentation (the config's tta_pipeline)
"""
import argparse
import os
# Set before torch loads: without an explicit OpenMP thread count CPU runs were up to 30x slower here (README).
os.environ.setdefault('OMP_NUM_THREADS', str(len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                                             else os.cpu_count() or 1))
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.runner import Runner  # noqa: E402

from projects.sar_oilspill.utils.cli import (add_common_args, apply_tta, enable_visualization,  # noqa: E402
                                             load_config, write_json_atomic)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='save the predicted label maps (PNG) into this directory')
    parser.add_argument('--show-dir', help='save ground-truth | prediction overlays into this directory')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_pipeline views, merged by its tta_model")
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    if args.tta:
        apply_tta(cfg, args.config)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if runner.rank == 0 and metrics:
        stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
        path = write_json_atomic(dict(config=args.config, checkpoint=args.checkpoint, metrics=metrics),
                                 osp.join(cfg.work_dir, f'test_metrics_{stamp}.json'))
        runner.logger.info(f'metrics saved to {path}')
        if args.show_dir:
            runner.logger.info(f'overlays written under {cfg.visualizer.save_dir}')


if __name__ == '__main__':
    main()
