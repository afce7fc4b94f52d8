"""Generate D_aug (SAR tiles + per-pixel logits) with a trained SAR-JointNet (paper Alg. 2).

Examples:
    python tools/generate_daug.py configs/sar_jointnet/osd.py work_dirs/osd/iter_400000.pth --num-samples 4480
    bash tools/dist_generate.sh configs/sar_jointnet/osd.py CKPT 2 --num-samples 4480     # 2 processes/GPUs

Defaults come from the config's ``generation_cfg`` (out dir, number of samples, batch size, base seed, grid) and,
for the DDIM step count and eta, from ``model.test_cfg``; the options below override them. Each sample ``i`` gets seed ``base_seed * 1000003 + i`` and is written by process
``i % world_size``; a run that is interrupted continues where it stopped when started again with the same
arguments. A grid of the first samples with their label overlays is saved to ``<out-dir>/grid.png``.
The checkpoint must fit the config (keys and shapes; ``--allow-partial`` overrides), hold finite weights and have
as many classes as the training set; otherwise nothing is generated.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from mmengine.runner import Runner  # noqa: E402

from projects.sar_oilspill.utils.cli import add_common_args, load_config, run_and_close  # noqa: E402

_RUN_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler', 'val_dataloader', 'val_cfg',
             'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate D_aug with a trained SAR-JointNet')
    parser.add_argument('config', help='SAR-JointNet config (configs/sar_jointnet/*.py)')
    parser.add_argument('checkpoint', help='stage-2 or stage-3 checkpoint')
    parser.add_argument('--out-dir', '--out', dest='out_dir', help='D_aug folder (default generation_cfg.out_dir)')
    parser.add_argument('--num-samples', type=int, help='total number of samples')
    parser.add_argument('--batch-size', type=int, help='samples per sampling call and process')
    parser.add_argument('--seed', type=int, help='base seed of the per-sample seeds')
    parser.add_argument('--steps', type=int, help='DDIM steps (paper: 200)')
    parser.add_argument('--eta', type=float, help='DDIM eta (0 = deterministic)')
    parser.add_argument('--size', type=int, nargs='+', help='tile size H [W] (default: the U-Net sample size)')
    parser.add_argument('--grid', type=int, help='samples in <out-dir>/grid.png (0: none)')
    parser.add_argument('--allow-partial', action='store_true',
                        help='generate even when the checkpoint lacks weights of the model, has others or has them '
                        'in other shapes (listed as a warning; those weights stay as initialised)')
    add_common_args(parser)
    return parser.parse_args(argv)


def _dataset_metainfo(cfg) -> dict:
    """Class names and palette of the config's training set (recorded in the D_aug manifest)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import projects.sar_oilspill  # noqa: F401
    ds = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    meta = dict(ds.get('metainfo') or {})
    ds_cls = DATASETS.get(ds.get('type')) if ds.get('type') else None
    if ds_cls is not None:
        for key, value in getattr(ds_cls, 'METAINFO', {}).items():
            meta.setdefault(key, value)
    return meta


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args)
    gen_cfg = dict(cfg.get('generation_cfg') or dict(type='JointNetGenerationLoop'))
    overrides = dict(out_dir=args.out_dir, num_samples=args.num_samples, batch_size=args.batch_size,
                     base_seed=args.seed, num_inference_steps=args.steps, eta=args.eta, grid=args.grid,
                     size=None if args.size is None else (args.size * 2)[:2])
    gen_cfg.update({k: v for k, v in overrides.items() if v is not None})
    if not gen_cfg.get('out_dir'):
        raise SystemExit('no output folder: pass --out-dir or set generation_cfg.out_dir in the config')
    gen_cfg['checkpoint'] = args.checkpoint
    meta = _dataset_metainfo(cfg)
    gen_cfg['classes'] = list(meta['classes']) if meta.get('classes') else None
    gen_cfg['palette'] = [list(c) for c in meta['palette']] if meta.get('palette') else None
    for key in _RUN_KEYS:  # generation needs the model only: no data loading, no optimizer
        cfg[key] = None
    cfg.resume = False
    cfg.load_from = None
    runner = Runner.from_cfg(cfg)
    from projects.sar_oilspill.utils.checkpoint_compat import (CheckpointError, check_num_classes,
                                                               validate_checkpoint_for_model)
    try:  # unreadable, unsafe, NaN/Inf, not fitting the model (unless --allow-partial), or other classes: refused
        check_num_classes(runner.model, gen_cfg['classes'], f'the training set of {args.config}')
        validate_checkpoint_for_model(runner.model, args.checkpoint, allow_partial=args.allow_partial,
                                      logger=runner.logger)
    except CheckpointError as e:
        raise SystemExit(str(e)) from None
    runner.load_checkpoint(args.checkpoint, map_location='cpu', strict=not args.allow_partial)
    from mmseg.registry import LOOPS
    loop = LOOPS.build(gen_cfg, default_args=dict(runner=runner))
    metrics = loop.run()
    if runner.rank == 0:
        print(f'generated {int(metrics["generated"])} samples in {metrics["seconds"]:.1f} s '
              f'({metrics["samples_per_second"]:.3f} samples/s); D_aug: {gen_cfg["out_dir"]}')
    return metrics


if __name__ == '__main__':
    run_and_close(main)
