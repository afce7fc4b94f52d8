"""Evaluate a checkpoint, as mmseg's tools/test.py, and save the metric table as JSON in the work dir.

Examples:
    python tools/test.py configs/saross/osd.py work_dirs/osd/iter_20000.pth
    python tools/test.py CONFIG CKPT --show-dir vis --out preds
    python tools/test.py CONFIG CKPT --tta     # flip test-time augmentation (the config's tta_pipeline)

The checkpoint must fit the config: a missing, empty, unreadable or unsafe file, NaN/Inf weights, missing,
unexpected or mis-shaped keys (listed; ``--allow-partial`` overrides) and a head ``num_classes`` that differs from
the test set's classes stop with a message instead of evaluating partly random weights.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from mmengine.runner import Runner  # noqa: E402

from projects.sar_oilspill.utils.cli import (add_common_args, apply_tta, enable_visualization,  # noqa: E402
                                             load_config, run_and_close, write_json_atomic)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='save the predicted label maps (PNG) into this directory')
    parser.add_argument('--show-dir', help='save ground-truth | prediction overlays into this directory')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_pipeline views, merged by its tta_model")
    parser.add_argument('--allow-partial', action='store_true',
                        help='evaluate even when the checkpoint lacks weights of the model, has others or has '
                        'them in other shapes (listed as a warning; those weights stay as initialised)')
    add_common_args(parser)
    return parser.parse_args(argv)


def load_checked(runner: Runner, cfg, checkpoint: str, allow_partial: bool = False) -> None:
    """Load ``checkpoint`` into the runner's model after refusing an unreadable, unsafe or non-finite file, one
    whose keys or shapes do not fit the model (unless ``allow_partial``) and a ``num_classes`` that differs from the
    test set's classes. mmengine's ``runner.test()`` would load ``load_from`` non-strictly (random weights for
    whatever does not fit); here it finds the weights loaded."""
    from projects.sar_oilspill.utils.checkpoint_compat import (CheckpointError, check_num_classes,
                                                               dataset_classes_from_cfg,
                                                               validate_checkpoint_for_model)
    try:
        test_set = (cfg.get('test_dataloader') or {}).get('dataset')
        check_num_classes(runner.model, dataset_classes_from_cfg(test_set),
                          f'the test set ({(test_set or {}).get("type")})')
        validate_checkpoint_for_model(runner.model, checkpoint, allow_partial=allow_partial, logger=runner.logger)
    except CheckpointError as e:
        raise SystemExit(str(e)) from None
    runner.load_checkpoint(checkpoint, map_location='cpu', strict=not allow_partial)


def main(argv=None) -> None:
    args = parse_args(argv)
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
    load_checked(runner, cfg, args.checkpoint, allow_partial=args.allow_partial)
    metrics = runner.test()
    if runner.rank == 0 and metrics:
        stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
        path = write_json_atomic(dict(config=args.config, checkpoint=args.checkpoint, metrics=metrics),
                                 osp.join(cfg.work_dir, f'test_metrics_{stamp}.json'))
        runner.logger.info(f'metrics saved to {path}')
        if args.show_dir:
            runner.logger.info(f'overlays written under {cfg.visualizer.save_dir}')
    return metrics


if __name__ == '__main__':
    run_and_close(main)
