"""Whole-scene inference benchmark: time and peak memory of ``tools/inference.py`` on a synthetic GeoTIFF scene.

Writes a float32 sigma0-in-dB GeoTIFF (UTM, 10 m pixels, a nodata border; default the size of a Sentinel-1 IW GRD
scene, 25000 x 17000) block by block, saves a randomly initialised checkpoint of each config (the weights do not
change the cost), runs ``tools/inference.py`` on the scene in a child process and reports its wall time and peak
resident memory (``ru_maxrss`` of the child). Example (the README's figures)::

    python tools/benchmarks/bench_scene_inference.py \
        --configs configs/saross/sos_alos_tiny_cpu.py configs/saross/sos_alos.py --size 25000 17000 \
        --tile 1024 1024 --threads 2

Any further inference options go after ``--``, e.g. ``-- --save-probs --slide 512 512``.
"""
import argparse
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)


def write_scene(path, height, width, block=1024, seed=0):
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    rng = np.random.default_rng(seed)
    prof = dict(driver='GTiff', height=height, width=width, count=1, dtype='float32', nodata=-9999.0, tiled=True,
                blockxsize=512, blockysize=512, compress='deflate', crs=CRS.from_epsg(32631),
                transform=Affine(10.0, 0, 500000.0, 0, -10.0, 5400000.0), BIGTIFF='IF_SAFER')
    with rasterio.open(path, 'w', **prof) as dst:
        dst.update_tags(SAR_OILSPILL_BACKSCATTER='db')
        for y in range(0, height, block):
            h = min(block, height - y)
            yy = np.arange(y, y + h)[:, None]
            xx = np.arange(width)[None, :]
            db = (-15 + 1.5 * rng.standard_normal((h, width))).astype(np.float32)
            slick = ((yy % 3000 - 1500) / 400.0) ** 2 + ((xx % 4000 - 2000) / 900.0) ** 2 <= 1
            db[slick] -= 9
            db[:, :200] = -9999.0  # a nodata border, as GRD scenes have
            dst.write(db[None], window=((y, y + h), (0, width)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--configs', nargs='+', default=['configs/saross/sos_alos_tiny_cpu.py'])
    p.add_argument('--size', type=int, nargs=2, default=[25000, 17000], metavar=('H', 'W'))
    p.add_argument('--tile', type=int, nargs=2, default=[1024, 1024], metavar=('H', 'W'),
                   help='block size passed to tools/inference.py (default 1024 1024, its default for raster scenes)')
    p.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument('--work-dir', help='keep the scene and outputs here (default: a temporary folder)')
    p.add_argument('extra', nargs=argparse.REMAINDER, help='options passed on to tools/inference.py (after --)')
    args = p.parse_args()
    extra = [a for a in args.extra if a != '--']
    import torch
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    import projects.sar_oilspill  # noqa: F401
    register_all_modules(init_default_scope=True)
    tmp = args.work_dir or tempfile.mkdtemp(prefix='bench_scene_')
    os.makedirs(tmp, exist_ok=True)
    scene = osp.join(tmp, f'scene_{args.size[0]}x{args.size[1]}.tif')
    if not osp.isfile(scene):
        t = time.perf_counter()
        write_scene(scene, *args.size)
        print(f'wrote {scene} in {time.perf_counter() - t:.1f} s')
    rows = []
    for cfg_path in args.configs:
        cfg = Config.fromfile(cfg_path)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        ckpt = osp.join(tmp, osp.splitext(osp.basename(cfg_path))[0] + '.pth')
        torch.save(dict(state_dict=model.state_dict()), ckpt)
        del model
        out = osp.join(tmp, 'out_' + osp.splitext(osp.basename(cfg_path))[0])
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'inference.py'), cfg_path, ckpt, scene, '--out-dir', out,
               '--tile', *map(str, args.tile), '--overwrite', '--land-mask', 'none'] + extra
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
        seconds = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        if proc.returncode:
            raise SystemExit(f'{" ".join(cmd)} failed with exit status {proc.returncode}')
        if peak_mb <= before / 1024:
            print('note: peak RSS not above an earlier child; run one config per invocation for exact figures')
        rows.append((cfg_path, seconds, peak_mb))
        print(' '.join(cmd))
    print(f'\n| config | scene | tile | threads | time (s) | peak RSS (MB) |\n|---|---|---|---|---|---|')
    for cfg_path, seconds, peak in rows:
        print(f'| `{cfg_path}` | {args.size[0]}x{args.size[1]} | {args.tile[0]}x{args.tile[1]} | {args.threads} | '
              f'{seconds:.1f} | {peak:.0f} |')


if __name__ == '__main__':
    main()
