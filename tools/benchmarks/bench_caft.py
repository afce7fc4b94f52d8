"""Table 9 of the paper: cost of the skip module (none / 3x3 conv / CAFT).

Builds the same segmentor three times, changing only
``model.decode_head.skip_cfg.skip_type`` (``'none'``, ``'conv3x3'``,
``'caft'``), and prints params (M), FLOPs (G), median latency (ms, batch 1,
with warm-up) and peak memory (MB) of one forward, each with its change
from ``'none'``.

Usage::

    # built-in backbones (run now, no config needed)
    python tools/benchmarks/bench_caft.py --backbone resnet34 --shape 256 256
    python tools/benchmarks/bench_caft.py --backbone test-small --runs 5
    # any SAROSS config (e.g. with the MambaVision backbone)
    python tools/benchmarks/bench_caft.py --config configs/saross/osd.py

Every variant runs in its own subprocess, so that its memory is measured
alone. Memory: on CUDA, ``torch.cuda.max_memory_allocated`` during the
forward minus the memory allocated before it; on CPU, the process's peak
resident set (VmHWM, reset through ``/proc/self/clear_refs`` just before
the forward; ``ru_maxrss`` if that is not allowed) minus the resident set
before the forward. FLOPs are mmengine's (one multiply-add = one FLOP).
"""
import argparse
import gc
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import torch  # noqa: E402

from projects.sar_oilspill.utils.profiling import reset_peak_rss, rss_kb  # noqa: E402

VARIANTS = ('none', 'conv3x3', 'caft')
PAPER_TABLE9 = ('Paper (MambaVision-B, RTX 2080): none 39.52 ms; 3x3 conv '
                '+6.95 M params, +37.06 GFLOPs, 48.36 ms, +37 MB; CAFT '
                '+0.89 M, +11.45 GFLOPs, 45.28 ms, +11 MB')


def builtin_model(name: str, num_classes: int) -> dict:
    """Model config for a built-in backbone.

    Args:
        name (str): ``'resnet34'``, ``'resnet18'`` or ``'test-small'``
            (ResNet-18 with 8 base channels, for quick runs).
        num_classes (int): Number of classes.

    Returns:
        dict: A ``SoftLabelEncoderDecoder`` config with a ``SAROSSHead``.
    """
    if name in ('resnet34', 'resnet18'):
        depth = int(name[len('resnet'):])
        backbone = dict(type='ResNet', depth=depth, out_indices=(0, 1, 2, 3),
                        norm_cfg=dict(type='BN', requires_grad=True))
        in_channels = [64, 128, 256, 512]
        decoder = (256, 128, 64, 32, 16)
        heads = (1, 2, 4)
    elif name == 'test-small':
        backbone = dict(type='ResNet', depth=18, stem_channels=8,
                        base_channels=8, out_indices=(0, 1, 2, 3),
                        norm_cfg=dict(type='BN', requires_grad=True))
        in_channels = [8, 16, 32, 64]
        decoder = (16, 8, 8, 8, 8)
        heads = (1, 2, 4)
    else:
        raise ValueError(f'bench_caft: unknown --backbone {name!r}; expected '
                         'resnet34, resnet18 or test-small (or use --config)')
    return dict(
        type='SoftLabelEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=backbone,
        decode_head=dict(
            type='SAROSSHead',
            in_channels=in_channels,
            decoder_channels=decoder,
            skip_cfg=dict(type='UNetPPSkip', skip_type='caft',
                          num_heads=heads),
            num_classes=num_classes,
            dropout_ratio=0.,
            loss_decode=dict(type='CrossEntropyLoss')),
        test_cfg=dict(mode='whole'))


def model_config(args: argparse.Namespace, variant: str):
    """The model config of one variant (a ConfigDict)."""
    from mmengine import Config, ConfigDict
    if args.config:
        if not osp.isfile(args.config):
            raise FileNotFoundError(
                f'bench_caft: config {args.config} not found')
        cfg = Config.fromfile(args.config)  # runs its custom_imports
        model = cfg.model.copy()
    else:
        import projects.sar_oilspill  # noqa: F401 (registers the plugin)
        model = ConfigDict(builtin_model(args.backbone, args.num_classes))
    head = model.get('decode_head', {})
    if head.get('type') != 'SAROSSHead':
        raise ValueError('bench_caft: model.decode_head.type must be '
                         f"'SAROSSHead', got {head.get('type')!r}")
    skip_cfg = head.get('skip_cfg') or dict(type='UNetPPSkip')
    skip_cfg = dict(skip_cfg)
    skip_cfg['skip_type'] = variant
    head['skip_cfg'] = skip_cfg
    model.pop('auxiliary_head', None)
    return model


def measure(args: argparse.Namespace, variant: str) -> Dict[str, float]:
    """Measure one variant in this process (the worker side)."""
    from mmengine.analysis import FlopAnalyzer
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from mmseg.registry import MODELS

    torch.set_num_threads(args.threads)
    init_default_scope('mmseg')
    device = torch.device(args.device)
    model = revert_sync_batchnorm(MODELS.build(model_config(args, variant)))
    model.eval().to(device)
    params = sum(p.numel() for p in model.parameters())
    skip_params = sum(p.numel() for p in model.decode_head.skip.parameters())
    h, w = args.shape
    x = torch.randn(1, 3, h, w, device=device)

    def forward():
        with torch.no_grad():
            return model(x, mode='tensor')

    # peak memory of one forward (first call, before any warm-up)
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        forward()
        torch.cuda.synchronize()
        mem_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        rss_before = rss_kb('VmRSS')
        if reset_peak_rss() and rss_before is not None:
            forward()
            mem_mb = (rss_kb('VmHWM') - rss_before) / 1024
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            forward()
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            mem_mb = (after - before) / 1024

    for _ in range(args.warmup):
        forward()
    times = []
    for _ in range(args.runs):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        forward()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)

    flops = FlopAnalyzer(model, (x, )).unsupported_ops_warnings(
        False).uncalled_modules_warnings(False).total()
    return dict(
        variant=variant,
        params=params,
        skip_params=skip_params,
        flops=flops,
        ms_median=statistics.median(times),
        ms_mean=statistics.fmean(times),
        mem_mb=mem_mb)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Table 9: none vs 3x3 conv vs CAFT skip modules')
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--config', help='config whose model uses SAROSSHead')
    src.add_argument(
        '--backbone',
        default='resnet34',
        help='built-in model: resnet34 (default), resnet18, test-small')
    parser.add_argument('--shape', type=int, nargs=2, default=[256, 256],
                        metavar=('H', 'W'))
    parser.add_argument('--num-classes', type=int, default=5)
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--runs', type=int, default=30,
                        help='timed forwards (the paper averages 300)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1: stable timings '
                        'on a shared machine)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS)
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.worker:
        print('BENCH_RESULT ' + json.dumps(measure(args, args.worker)))
        return
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError('bench_caft: --device cuda but CUDA is not '
                           'available')
    results = {}
    for variant in args.variants:
        cmd = [sys.executable, osp.abspath(__file__), '--worker', variant
               ] + sys.argv[1:]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines()
                 if ln.startswith('BENCH_RESULT ')]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f'bench_caft: variant {variant!r} failed '
                               f'(exit {proc.returncode}):\n{proc.stderr}')
        results[variant] = json.loads(lines[-1][len('BENCH_RESULT '):])

    src = args.config or f'built-in {args.backbone}'
    print(f'Model: {src}; input 1x3x{args.shape[0]}x{args.shape[1]}; '
          f'device {args.device}' + (f' ({args.threads} threads)'
                                     if args.device == 'cpu' else '') +
          f'; latency = median of {args.runs} runs after {args.warmup} '
          'warm-up')
    base = results.get('none')
    header = ('| skip module | Params (M) | dParams (M) | FLOPs (G) | '
              'dFLOPs (G) | Time (ms) | dTime (ms) | Memory (MB) | '
              'dMemory (MB) |')
    print(header)
    print('|' + '---|' * 9)
    for variant, r in results.items():
        def delta(key, scale, fmt):
            if base is None or variant == 'none':
                return '-'
            return format((r[key] - base[key]) / scale, '+' + fmt)

        print(f'| {variant} | {r["params"] / 1e6:.3f} | '
              f'{delta("params", 1e6, ".3f")} | {r["flops"] / 1e9:.3f} | '
              f'{delta("flops", 1e9, ".3f")} | {r["ms_median"]:.2f} | '
              f'{delta("ms_median", 1, ".2f")} | {r["mem_mb"]:.1f} | '
              f'{delta("mem_mb", 1, ".1f")} |')
    print(PAPER_TABLE9)


if __name__ == '__main__':
    main()
