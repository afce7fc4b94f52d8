"""Time the chunked selective scan against the sequential loop at MambaVision's scan shapes.

The shapes come from the backbone config: for token level ``i`` of an H x W input the feature
map is ``ceil(H / 2**(i+2)) x ceil(W / 2**(i+2))``, padded to a multiple of the level's window
``ws``; every window is one scan sequence, so

    batch  = images * ceil(h / ws) * ceil(w / ws)       (windows)
    length = ws * ws                                     (tokens per window)
    d      = mixer.d_inner // 2 = channels / 2           (in_proj C -> C, split into x and z)
    n      = mixer.d_state = 8

Inputs follow the mixer's statistics: ``delta = softplus(W dt + 2 b)`` with ``b`` drawn like
``dt_proj.bias`` (inverse softplus of log-uniform [1e-3, 1e-1]), ``A = -(1..N)``, ``D = 1``.

Example::

    python tools/benchmarks/bench_selective_scan.py --arch base --img-size 512 512 \
        --repeats 20 --threads 2
    python tools/benchmarks/bench_selective_scan.py --window-size 8 8 64 32   # NVlabs ADE20K
"""
import argparse
import ctypes
import ctypes.util
import functools
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for `projects`
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import torch  # noqa: E402

from projects.sar_oilspill.models.backbones.mambavision import MambaVision  # noqa: E402
from projects.sar_oilspill.models.backbones.selective_scan import (  # noqa: E402
    selective_scan_chunked, selective_scan_sequential)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='base', help='MambaVision arch (default: base)')
    parser.add_argument('--img-size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--images', type=int, default=1, help='images per batch (default: 1)')
    parser.add_argument('--window-size', type=int, nargs=4, default=None,
                        help="per-level windows (default: the arch's ImageNet windows)")
    parser.add_argument('--levels', type=int, nargs='+', default=(2, 3))
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed runs per implementation and cell (default: 20)')
    parser.add_argument('--group', type=int, default=5,
                        help='consecutive runs per turn, the first a warm-up (default: 5)')
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--budget', type=float, default=60.,
                        help='seconds per cell; fewer repeats (>= 1) if one run is slower')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--malloc', choices=('fixed', 'default'), default='fixed',
                        help="glibc allocator thresholds: 'fixed' (default) sets them once, "
                        "'default' keeps glibc's dynamic ones (see fix_malloc_thresholds)")
    parser.add_argument('--chunk-size', type=int, default=None,
                        help='time steps per block of the chunked scan (default: auto)')
    return parser.parse_args()


def fix_malloc_thresholds() -> str:
    """Fix glibc's mmap and trim thresholds (32 MiB, 1 GiB) for a reproducible measurement.

    By default glibc adapts both to the history of the process: a multi-MiB tensor is
    sometimes served from the heap and sometimes mmap-ed fresh and page-faulted in (about
    1 us per 4 KiB page here). The same scan then measured 1.6 ms or 4.5 ms from one
    process to the next, and the sequential loop 9 or 20 ms depending on which level ran
    first. Fixed thresholds (what jemalloc/tcmalloc users get in effect) leave the
    algorithms to be compared. Returns a description for the header.
    """
    path = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return 'malloc: default (not glibc)'
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    if mallopt(m_mmap_threshold, 32 << 20) != 1 or mallopt(m_trim_threshold, 1 << 30) != 1:
        return 'malloc: default (mallopt refused)'
    return 'malloc: glibc, mmap threshold 32 MiB, trim threshold 1 GiB'


def scan_shapes(args: argparse.Namespace) -> List[Dict[str, int]]:
    """(batch, d, length, n) of the mixer scans of each requested level, from the model."""
    with torch.device('meta'):  # no allocation; only the config and module shapes are read
        model = MambaVision(arch=args.arch, window_size=args.window_size)
    shapes = []
    for i in args.levels:
        level = model.levels[i]
        if level.conv:
            raise SystemExit(f'level {i} of {args.arch} is convolutional: no scan')
        mixer = next(blk.mixer for blk in level.blocks if hasattr(blk.mixer, 'A_log'))
        ws = level.window_size
        h, w = (math.ceil(s / 2**(i + 2)) for s in args.img_size)
        windows = args.images * math.ceil(h / ws) * math.ceil(w / ws)
        shapes.append(dict(level=i, feat_h=h, feat_w=w, window=ws, batch=windows,
                           d=mixer.d_inner // 2, length=ws * ws, n=mixer.d_state))
    return shapes


def make_inputs(s: Dict[str, int], gen: torch.Generator) -> Dict[str, torch.Tensor]:
    b, d, length, n = s['batch'], s['d'], s['length'], s['n']
    dt = torch.exp(torch.rand(d, generator=gen) * (math.log(0.1) - math.log(1e-3)) +
                   math.log(1e-3))
    bias = dt + torch.log(-torch.expm1(-dt))
    return dict(
        u=torch.randn(b, d, length, generator=gen),
        delta=0.1 * torch.randn(b, d, length, generator=gen) + bias[:, None],
        A=-torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1),
        B=torch.randn(b, n, length, generator=gen),
        C=torch.randn(b, n, length, generator=gen),
        D=torch.ones(d),
        delta_bias=bias)


def run_once(fn: Callable, inputs: Dict[str, torch.Tensor], backward: bool) -> float:
    if backward:
        inputs = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    start = time.perf_counter()
    if backward:
        y = fn(**inputs, delta_softplus=True)
        y.backward(torch.ones_like(y))
    else:
        with torch.no_grad():
            fn(**inputs, delta_softplus=True)
    return time.perf_counter() - start


def grads(fn: Callable, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    y = fn(**leaves, delta_softplus=True)
    y.backward(torch.ones_like(y))
    return {k: v.grad for k, v in leaves.items()}


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    return ((x - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def time_cell(fns: Dict[str, Callable], inputs, backward: bool, repeats: int, budget: float,
              group: int) -> Dict[str, List[float]]:
    """Median-ready timings, ``repeats`` per implementation.

    The implementations take turns in groups of ``group`` consecutive runs, and the first run
    of each group is a discarded warm-up: load drifts hit both, and each is timed in its own
    steady state rather than right after the other has evicted its data from the caches
    (the sequential loop touches several times more memory, which, interleaved run by run,
    charges the other implementation up to 0.7 ms of cache misses at level 3).
    """
    first = {name: run_once(fn, inputs, backward) for name, fn in fns.items()}  # warm-up
    n = max(1, min(repeats, int(budget / max(sum(first.values()), 1e-9))))
    times: Dict[str, List[float]] = {name: [] for name in fns}
    while len(times[next(iter(fns))]) < n:
        for name, fn in fns.items():
            run_once(fn, inputs, backward)  # warm-up after the other implementation
            for _ in range(min(group - 1, n - len(times[name]))):
                times[name].append(run_once(fn, inputs, backward))
    return times


def main() -> None:
    args = parse_args()
    if args.group < 2:
        raise SystemExit(f'--group must be >= 2 (one warm-up and one timed run), got {args.group}')
    malloc = fix_malloc_thresholds() if args.malloc == 'fixed' else 'malloc: glibc default'
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    fns = {'sequential': selective_scan_sequential,
           'chunked': functools.partial(selective_scan_chunked, chunk_size=args.chunk_size)}
    print(f'MambaVision-{args.arch} mixer scans, input {args.img_size[0]}x{args.img_size[1]} '
          f'x{args.images}, torch {torch.__version__}, {args.threads} threads, float32, '
          f'median over up to {args.repeats} runs each, in turns of {args.group - 1} after a warm-up '
          f'(ms); {malloc}')
    # max rel err: of the output for 'fwd'; for 'fwd+bwd' the worst over the gradients w.r.t.
    # all 7 inputs, each relative to the largest magnitude of the reference gradient
    header = (f"{'level':>5} {'feature':>8} {'ws':>3} {'(batch, d, L, n)':>22} {'pass':>8} "
              f"{'sequential':>11} {'chunked':>9} {'speed-up':>9} {'runs':>5} {'max rel err':>12}")
    print(header)
    print('-' * len(header))
    for s in scan_shapes(args):
        inputs = make_inputs(s, gen)
        with torch.no_grad():
            ref = selective_scan_sequential(**inputs, delta_softplus=True)
            out = fns['chunked'](**inputs, delta_softplus=True)
        for backward in (False, True):
            times = time_cell(fns, inputs, backward, args.repeats, args.budget, args.group)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            if backward:  # checked after the timing, which it would otherwise precede
                err = max(rel_err(g, r) for g, r in zip(grads(fns['chunked'], inputs).values(),
                                                        grads(fns['sequential'], inputs).values()))
            else:
                err = rel_err(out, ref)
            shape = f"({s['batch']}, {s['d']}, {s['length']}, {s['n']})"
            print(f"{s['level']:>5} {s['feat_h']:>3}x{s['feat_w']:<4} {s['window']:>3} "
                  f"{shape:>22} {'fwd+bwd' if backward else 'fwd':>8} "
                  f"{med['sequential']:>11.2f} {med['chunked']:>9.2f} "
                  f"{med['sequential'] / med['chunked']:>8.1f}x "
                  f"{len(times['chunked']):>5} {err:>12.1e}", flush=True)


if __name__ == '__main__':
    main()
