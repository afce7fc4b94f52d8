"""The embedded default: synthetic SAR scenes -> train a small model -> evaluate -> metric table + overlays.

Needs no download. Runs the user's own command lines (tools/train.py, tools/test.py) on a synthetic dataset in
OSD's layout, so everything a real run uses (dataset class, label decoding, metric table, visualisation) is
exercised. Takes about 10 minutes on a 2-core CPU.

With ``--dakd`` (``make demo-dakd``) it runs the paper's whole method on the same scenes at CPU size: balancing
factor -> SAR-JointNet's three stages -> generation of D_aug (tiles + soft labels, grid picture) -> the student
trained on real crops alone and on real crops + D_aug mosaics (DAKD), both evaluated the same way.

The last phase (skipped with ``--no-scene``) runs the user's scene command on one synthetic test scene written
as a georeferenced GeoTIFF of sigma0 in dB (float32, UTM zone 15N, 10 m pixels, open sea in the Gulf of Mexico;
the grey levels mapped to dB by the exact inverse of the inference tool's ``--db-range`` window, so the model sees
the test image pixel for pixel): ``tools/inference.py CONFIG CKPT SCENE.tif --backscatter db --land-mask none
--min-area-m2 0``, and prints where its GeoJSON/GeoPackage polygons, quicklook and class-map GeoTIFF are.

The terminal shows one progress bar per phase and the final table; each tool's whole output (mmengine's config
dump, hook tables, training log) goes to ``<work dir>/logs/<phase>.log``. A failing phase prints its error (the
traceback in full) and the path of its log.

    python tools/demo.py [--config CONFIG] [--iters N] [--work-dir DIR] [--no-scene] [--dakd [--daug-samples N]]
"""
import argparse
import contextlib
import glob
import json
import os
import os.path as osp
import shutil
import signal
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from projects.sar_oilspill.datasets.synthetic import write_synthetic_osd  # noqa: E402
from projects.sar_oilspill.utils.atomic import atomic_write  # noqa: E402
from projects.sar_oilspill.utils.tool_runs import last_checkpoint, run_test, run_tool  # noqa: E402

DEFAULT_CONFIG = 'configs/saross/synthetic_tiny.py'
# How often the tools log an iteration (the bars advance at this step).
LOG_INTERVAL = 10
# The georeferenced demo scene: UTM zone 15N, 10 m pixels, upper-left corner at about 27.03 N 91.99 W (open sea in
# the Gulf of Mexico, some 200 km off the Louisiana coast, so no land mask is needed).
SCENE_CRS = 'EPSG:32615'
SCENE_ORIGIN = (600000.0, 2990000.0)
SCENE_PIXEL_M = 10.0


@contextlib.contextmanager
def _exit_on_failure(desc, log):
    """A tool that fails inside (``RuntimeError`` of ``run_tool``): print its error and the log's path, and exit."""
    try:
        yield
    except RuntimeError as e:
        print(f'\n{desc} FAILED: {e}\nfull log: {log}', file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def run(cmd, log, desc):
    """Run one tool (``[sys.executable, script, *args]``) with its whole output in ``log`` (relative to the repository
    root) and a progress bar ``desc`` (``utils/tool_runs.run_tool``). On failure print the error (the traceback in
    full) and the log's path, and exit."""
    if cmd[0] != sys.executable:
        raise ValueError(f'run() takes [sys.executable, script, *args], got {cmd[:2]}')
    with _exit_on_failure(desc, log):
        run_tool(cmd[1], cmd[2:], log_path=log, progress=desc)


def train_and_test(config, work_dir, data_opts, train_opts, show_dir=None, descs=('train', 'test')):
    """tools/train.py then tools/test.py on the last checkpoint; returns (metrics, metrics JSON path)."""
    logs = osp.join(work_dir, 'logs')
    # no validation pass at the end of training: the test right after evaluates the same scenes
    run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *data_opts,
         *train_opts, f'default_hooks.logger.interval={LOG_INTERVAL}', 'train_cfg.val_begin=1000000000'],
        osp.join(logs, 'train.log'), descs[0])
    options = (['--show-dir', show_dir] if show_dir else []) + [
        '--cfg-options', *data_opts, f'default_hooks.logger.interval={LOG_INTERVAL}']
    with _exit_on_failure(descs[1], osp.join(logs, 'test.log')):
        return run_test(config, last_checkpoint(work_dir), work_dir, options, log_path=osp.join(logs, 'test.log'),
                        progress=descs[1], with_path=True)


def print_metrics(metrics):
    for k in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc'):
        print(f'  {k:<11} {metrics[k]:6.2f}')
    for k, v in metrics.items():
        if k.startswith('IoU.'):
            print(f'  IoU {k[4:]:<12} {v:6.2f}')


def iter_opts(iters):
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}'] if iters else []


def make_data(a, step):
    """Write (or reuse) the synthetic scenes with a progress bar."""
    from tqdm import tqdm
    num_train, num_test = 200, 40
    bar = tqdm(desc=f'{step} generate data', total=num_train + num_test, unit='scene', dynamic_ncols=True,
               file=sys.stdout)
    write_synthetic_osd(osp.join(ROOT, a.data_root), num_train=num_train, num_test=num_test, height=256, width=256,
                        seed=0, progress=lambda done, total: bar.update(done - bar.n))
    if bar.n == 0:
        bar.set_postfix_str(f'reused {a.data_root}')
        bar.update(bar.total)
    bar.close()


def write_scene_geotiff(image_path, out_path, db_range=None):
    """Write an 8-bit image as a float32 GeoTIFF of sigma0 in dB (:data:`SCENE_CRS`, :data:`SCENE_PIXEL_M` pixels,
    upper-left corner :data:`SCENE_ORIGIN`). The grey levels go to dB by the exact inverse of the dB window that
    tools/inference.py maps back to the model's input (``--db-range``, default -30 0), so the model sees the image
    pixel for pixel. Returns ``(db_range, transform)``."""
    import rasterio
    from affine import Affine

    from projects.sar_oilspill.datasets.image_io import read_image
    from projects.sar_oilspill.geo import DEFAULT_DB_RANGE, model_input_to_db
    db_range = tuple(float(v) for v in (db_range or DEFAULT_DB_RANGE))
    grey = read_image(image_path, 'grayscale')
    db = model_input_to_db(grey, db_range)
    transform = Affine(SCENE_PIXEL_M, 0.0, SCENE_ORIGIN[0], 0.0, -SCENE_PIXEL_M, SCENE_ORIGIN[1])
    os.makedirs(osp.dirname(out_path), exist_ok=True)

    def write(tmp):
        with rasterio.open(tmp, 'w', driver='GTiff', height=db.shape[0], width=db.shape[1], count=1,
                           dtype='float32', crs=SCENE_CRS, transform=transform, compress='deflate') as dst:
            dst.write(db, 1)
            dst.set_band_description(1, 'sigma0 (dB)')
            dst.update_tags(source=f'synthetic demo scene {osp.basename(image_path)} (tools/demo.py): grey levels g '
                            f'as sigma0 = {db_range[0]:g} + g / 255 * ({db_range[1]:g} - {db_range[0]:g}) dB')

    atomic_write(out_path, write, keep_suffix=True)
    return db_range, transform


def pick_scene(data_root):
    """The synthetic test scene with the most oil-spill pixels: ``(name, oil pixels)``."""
    from projects.sar_oilspill.datasets.image_io import read_label
    from projects.sar_oilspill.datasets.synthetic import OIL
    labels = osp.join(ROOT, data_root, 'test', 'labels_1D')
    counts = {osp.splitext(n)[0]: int((read_label(osp.join(labels, n)) == OIL).sum())
              for n in sorted(os.listdir(labels)) if n.endswith('.png')}
    name = max(counts, key=lambda k: (counts[k], k))
    return name, counts[name]


def run_scene(a, ckpt, desc):
    """tools/inference.py on one synthetic test scene written as a georeferenced GeoTIFF of sigma0 in dB; returns
    what to print (paths relative to the repository root, oil-spill polygons and areas)."""
    name, gt_oil = pick_scene(a.data_root)
    images = osp.join(ROOT, a.data_root, 'test', 'images')
    image = next(osp.join(images, n) for n in sorted(os.listdir(images)) if osp.splitext(n)[0] == name)
    out_dir = osp.join(a.work_dir, 'scene')
    stem = f'synthetic_{name}'
    tif = osp.join(out_dir, 'sigma0_db', stem + '.tif')
    db_range, transform = write_scene_geotiff(image, osp.join(ROOT, tif))
    run([sys.executable, 'tools/inference.py', a.config, ckpt, tif, '--out-dir', out_dir, '--backscatter', 'db',
         '--db-range', *(f'{v:g}' for v in db_range), '--land-mask', 'none', '--min-area-m2', '0', '--overwrite'],
        osp.join(a.work_dir, 'logs', 'scene.log'), desc)
    with open(osp.join(ROOT, out_dir, 'summary.json')) as f:
        rec = json.load(f)['images'][stem]
    oil = rec.get('polygons', {}).get('oil_spill', dict(count=0, area_km2=0.0))
    outs = {k: osp.join(out_dir, v) for k, v in rec['outputs'].items()}
    return dict(name=name, tif=tif, outputs=outs, oil=oil, gt_oil_km2=gt_oil * SCENE_PIXEL_M ** 2 / 1e6,
                height=rec['height'], width=rec['width'], transform=transform)


def print_scene(s):
    from pyproj import Transformer
    lon, lat = Transformer.from_crs(SCENE_CRS, 'EPSG:4326', always_xy=True).transform(
        *(s['transform'] * (s['width'] / 2, s['height'] / 2)))
    km = SCENE_PIXEL_M / 1000
    print(f'\ngeoreferenced scene: synthetic test scene {s["name"]} as sigma0 in dB, {SCENE_CRS} (UTM 15N), '
          f'{SCENE_PIXEL_M:g} m pixels, {s["width"] * km:g} km x {s["height"] * km:g} km centred at '
          f'{lat:.3f} N {-lon:.3f} W (open sea, Gulf of Mexico):')
    o = s['outputs']
    for what, key in (('input GeoTIFF', None), ('polygons', 'geojson'), ('', 'gpkg'), ('quicklook', 'quicklook'),
                      ('class map', 'mask')):
        print(f'  {what:<14} {s["tif"] if key is None else o[key]}')
    print(f'  {s["oil"]["count"]} oil-spill polygon(s), {s["oil"]["area_km2"]:.4f} km² in all '
          f'(ground truth {s["gt_oil_km2"]:.4f} km²)')


def run_dakd(a, data_opts, t0):
    """Balancing factor -> SAR-JointNet (3 stages) -> D_aug -> students without / with DAKD."""
    jn_cfg, jn_wd = 'configs/sar_jointnet/synthetic_tiny_cpu.py', osp.join(a.work_dir, 'sar_jointnet')
    logs = osp.join(jn_wd, 'logs')
    train_root = [o for o in data_opts if o.startswith('train_')]
    bf_json = osp.join(jn_wd, 'balancing_factor.json')
    run([sys.executable, 'tools/compute_balancing_factor.py', jn_cfg, '--out', bf_json, '--cfg-options', *train_root],
        osp.join(logs, 'balancing_factor.log'), '[2/8] balancing factor')
    with open(osp.join(ROOT, bf_json)) as f:
        b = json.load(f)['balancing_factor']
    jn_opts = train_root + [f'model.balancing_factor={b:.6f}']
    if a.iters:
        n = max(1, a.iters // 3)
        jn_opts += [f'train_cfg.stage_iters=({n},{n},{n})', f'default_hooks.checkpoint.interval={n}']
    run([sys.executable, 'tools/train.py', jn_cfg, '--work-dir', jn_wd, '--cfg-options', *jn_opts,
         f'default_hooks.logger.interval={LOG_INTERVAL}'], osp.join(logs, 'train.log'),
        '[3/8] SAR-JointNet train (3 stages)')
    jn_ckpt = last_checkpoint(jn_wd)
    daug = osp.join(a.work_dir, 'daug')
    shutil.rmtree(osp.join(ROOT, daug), ignore_errors=True)  # the demo's own folder: always from this checkpoint
    run([sys.executable, 'tools/generate_daug.py', jn_cfg, jn_ckpt, '--work-dir', jn_wd, '--out-dir', daug,
         '--num-samples', str(a.daug_samples), '--batch-size', '16', '--cfg-options', *jn_opts],
        osp.join(logs, 'generate_daug.log'), '[4/8] generate D_aug')
    ref, ref_json = train_and_test('configs/saross/synthetic_tiny_crop128.py', osp.join(a.work_dir, 'student_real'),
                                   data_opts, iter_opts(a.iters),
                                   descs=('[5/8] student train, real crops', '[6/8] student test, real crops'))
    dakd_data = [o.replace('train_dataloader.dataset.', 'train_dataloader.dataset.real.') for o in data_opts]
    dakd_data += [f'train_dataloader.dataset.synthetic.data_root={daug}']
    dk, dk_json = train_and_test('configs/dakd/saross_synthetic_tiny.py', osp.join(a.work_dir, 'student_dakd'),
                                 dakd_data, iter_opts(a.iters), show_dir='overlays',
                                 descs=('[7/8] student train, real + D_aug', '[8/8] student test, real + D_aug'))
    print(f'\nbalancing factor b = {b:.4f}; {a.daug_samples} generated tiles + soft labels in {daug} '
          f'(grid: {daug}/grid.png)')
    print('\nsynthetic test split (%), same student, same iterations and seed:')
    print('| training data | mIoU | mF1 | ' + ' | '.join(f'IoU {k[4:]}' for k in ref if k.startswith('IoU.')) + ' |')
    print('|---|---|---|' + '---|' * sum(k.startswith('IoU.') for k in ref))
    for name, m in (('real crops', ref), ('real crops + D_aug (DAKD)', dk)):
        print(f'| {name} | {m["mIoU"]:.2f} | {m["mF1"]:.2f} | ' +
              ' | '.join(f'{v:.2f}' for k, v in m.items() if k.startswith('IoU.')) + ' |')
    keys = ['mIoU'] + [k for k in ref if k.startswith('IoU.')]
    print('DAKD minus real crops only (points): ' +
          ', '.join(f'{k.replace("IoU.", "IoU ")} {dk[k] - ref[k]:+.2f}' for k in keys))
    print(f'metrics JSON: {osp.relpath(ref_json, ROOT)}, {osp.relpath(dk_json, ROOT)}')
    print(f'full logs: {a.work_dir}/*/logs/')
    print(f'total {time.time() - t0:.0f} s')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--iters', type=int, default=None, help='override the number of training iterations')
    p.add_argument('--data-root', default='data/synthetic_osd')
    p.add_argument('--work-dir', default=None, help='default work_dirs/demo (work_dirs/demo_dakd with --dakd)')
    p.add_argument('--dakd', action='store_true', help='run SAR-JointNet + DAKD (about 20 minutes on 2 cores)')
    p.add_argument('--daug-samples', type=int, default=200, help='generated tiles for --dakd')
    p.add_argument('--no-scene', action='store_true',
                   help='skip the last phase (tools/inference.py on a synthetic georeferenced scene)')
    a = p.parse_args()
    a.work_dir = a.work_dir or ('work_dirs/demo_dakd' if a.dakd else 'work_dirs/demo')

    t0 = time.time()
    print(f'full logs of each phase: {a.work_dir}/' + ('*/logs/' if a.dakd else 'logs/'), flush=True)
    n = 3 if a.no_scene else 4
    make_data(a, '[1/8]' if a.dakd else f'[1/{n}]')
    opts = [f'train_dataloader.dataset.data_root={a.data_root}', f'val_dataloader.dataset.data_root={a.data_root}',
            f'test_dataloader.dataset.data_root={a.data_root}']
    if a.dakd:
        return run_dakd(a, opts, t0)
    metrics, path = train_and_test(a.config, a.work_dir, opts, iter_opts(a.iters), show_dir='overlays',
                                   descs=(f'[2/{n}] train', f'[3/{n}] test'))
    scene = None
    if not a.no_scene:
        ckpt = last_checkpoint(a.work_dir)
        scene = run_scene(a, ckpt, f'[4/{n}] segment a georeferenced scene')
    overlays = sorted(glob.glob(osp.join(ROOT, a.work_dir, 'overlays', '**', '*.png'), recursive=True))
    print('\ntest metrics on the synthetic test split (%):')
    print_metrics(metrics)
    print(f'metrics JSON: {osp.relpath(path, ROOT)}')
    if overlays:
        print(f'{len(overlays)} overlays (image | ground truth | prediction) in '
              f'{osp.relpath(osp.dirname(overlays[0]), ROOT)}')
    if scene is not None:
        print_scene(scene)
    print(f'full logs: {a.work_dir}/logs/train.log, {a.work_dir}/logs/test.log' +
          ('' if scene is None else f', {a.work_dir}/logs/scene.log'))
    print(f'total {time.time() - t0:.0f} s')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    # a terminated demo takes the running tool down with it (run_tool kills it on any exit)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    main()
