"""DDIM sampling throughput and peak memory of SAR-JointNet (image + label branches, paper Alg. 2).

Measures the time of ``--measure-steps`` joint DDIM steps (each one evaluation of SAR-Net + Label-Net with
feature exchange, plus two scheduler updates) on a batch of ``--batch`` tiles, medians over ``--repeats``, and
derives tiles/s for a full ``--steps``-step generation (paper: 200) and the time to generate ``--num-tiles`` tiles
(default 4480, the 4x OSD augmentation set of configs/dakd/saross_osd.py). Weights are random: speed does not
depend on them.

    python tools/benchmarks/bench_sampling.py                       # paper U-Net, 64 and 256 tiles, CPU
    python tools/benchmarks/bench_sampling.py --arch tiny --sizes 64 128
    python tools/benchmarks/bench_sampling.py --device cuda --batch 16
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import torch  # noqa: E402

from projects.sar_oilspill.models.generators import DEFAULT_UNET_CFG, TINY_UNET_CFG, SARJointNet  # noqa: E402
from projects.sar_oilspill.utils.atomic import write_json_atomic  # noqa: E402
from projects.sar_oilspill.utils.profiling import peak_memory_mb  # noqa: E402


def build(arch: str, size: int, num_classes: int, device: str) -> SARJointNet:
    unet = dict(DEFAULT_UNET_CFG if arch == 'paper' else TINY_UNET_CFG, sample_size=size)
    if arch == 'tiny':
        unet['attention_resolutions'] = (size // 2, )
    model = SARJointNet(balancing_factor=0.5, num_classes=num_classes, unet=unet, stage=3)
    return model.to(device).eval()


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', choices=['paper', 'tiny'], default='paper',
                   help="'paper': DDPM-256 U-Nets (~114 M parameters per branch); 'tiny': the test/CPU U-Net")
    p.add_argument('--sizes', type=int, nargs='+', default=[64, 256])
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--num-classes', type=int, default=5, help='K (OSD: 5)')
    p.add_argument('--steps', type=int, default=200, help='DDIM steps of a full generation')
    p.add_argument('--measure-steps', type=int, default=2, help='DDIM steps timed per repeat')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--num-tiles', type=int, default=4480, help='tiles of the extrapolated generation time')
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', help='write the results as JSON')
    args = p.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is visible')
    torch.manual_seed(0)
    rows = []
    print(f'device {args.device} ({torch.get_num_threads()} CPU threads), arch {args.arch}, batch {args.batch}, '
          f'K={args.num_classes}; timing {args.measure_steps} DDIM steps x {args.repeats} repeats')
    for size in args.sizes:
        model = build(args.arch, size, args.num_classes, args.device)
        params = sum(p.numel() for p in model.parameters()) / 1e6

        def run():
            with torch.no_grad():
                out = model.sample(num_samples=args.batch, num_inference_steps=args.measure_steps,
                                   size=(size, size))
            sync(args.device)
            return out

        _, mem_mb, how = peak_memory_mb(run, args.device)  # also the warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        step_s = statistics.median(times) / args.measure_steps
        tiles_per_s = args.batch / (step_s * args.steps)
        row = dict(size=size, params_m=round(params, 2), batch=args.batch, seconds_per_step=step_s,
                   tiles_per_s=tiles_per_s, seconds_per_tile=1 / tiles_per_s,
                   hours_for_num_tiles=args.num_tiles / tiles_per_s / 3600, peak_mem_mb=mem_mb, mem_probe=how)
        rows.append(row)
        del model
    print(f'\n| tile | params (M, both branches) | s / joint step (batch {args.batch}) | tiles/s ({args.steps} steps) '
          f'| {args.num_tiles} tiles | peak memory (MiB) |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["size"]}x{r["size"]} | {r["params_m"]:.1f} | {r["seconds_per_step"]:.3f} | '
              f'{r["tiles_per_s"]:.4f} | {r["hours_for_num_tiles"]:.1f} h | {r["peak_mem_mb"]:.0f} |')
    print(f'(memory: {rows[0]["mem_probe"]}; times are medians, extrapolated from {args.measure_steps}-step runs)')
    if args.out:
        write_json_atomic(dict(args=vars(args), rows=rows), args.out)


if __name__ == '__main__':
    main()
