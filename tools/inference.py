"""Segment SAR images or whole scenes with a trained model: class maps, overlays, oil-spill areas and polygons.

Examples:
    python tools/inference.py configs/saross/osd.py CKPT scene1.png scenes/ --out-dir work_dirs/infer
    python tools/inference.py configs/saross/osd.py CKPT S1A_IW_GRDH_1SDV_...SAFE.zip --out-dir work_dirs/s1
    python tools/inference.py configs/saross/osd.py CKPT sigma0_db.tif --backscatter db --out-dir work_dirs/s1

Raster scenes (Sentinel-1 GRD ``.SAFE`` folders or ``.zip``s, GeoTIFFs ``.tif``/``.tiff`` of any dtype) are read
block by block and mapped to the model's 8-bit input by one rule (sigma0 in dB clipped to ``--db-range`` and scaled
to 0..255; see projects/sar_oilspill/geo/scenes.py); a GeoTIFF's unit must be declared (``--backscatter``, or the tag
that ``--save-input`` writes) unless it is 8-bit. For each one: ``masks/<name>.tif`` (class map, the scene's CRS and
transform or GCPs, nodata 255), ``overlays/<name>.tif``, ``probs/<name>.tif`` (``--save-probs``: uint8, scale
1/255), ``polygons/<name>.geojson`` and ``.gpkg`` (EPSG:4326, one feature per 4-connected region of each class but
the background and land, with area, perimeter, centroid and confidence) and ``quicklooks/<name>.png``. Land
(``--land-mask``) becomes the land class of models that have one, else nodata; nodata borders are never segmented.
Settings and the checkpoint's SHA-256 are kept in ``run.json``: a re-run into the same folder with others is
refused (``--overwrite`` recomputes everything). A scene that fails is recorded in ``summary.json`` under
``failed``; the others go on and the run exits non-zero listing the failures. Memory does not grow with the scene:
one ``--tile`` block (default 1024 x 1024, with ``--tile-margin`` context) is in the model at a time, its class
map, confidence and probabilities go straight to GeoTIFFs, and the polygons, overlay and quicklook are made from
those files (scratch files under ``<out-dir>/.scratch-<name>``, removed at the end). Smaller ``--tile`` blocks use
less memory at the cost of more margin computation.

PNG/JPEG/BMP images (8-bit) are segmented whole, as before:

For every input image (files, or folders of .png/.jpg/.jpeg/.tif/.tiff/.bmp) writes, under ``--out-dir``:
``masks/<name>.png`` (uint8 class indices), ``overlays/<name>.png`` (classes blended over the image, the
dataset's colours), ``probs/<name>.npy`` with ``--save-probs`` (float16 K x H x W), and ``summary.json`` with the
pixels, fraction and (given the pixel size) km² of each class per image. ``--slide`` predicts by overlapping
windows (the network's activations are one window's; the scene's class scores stay in memory); ``--tile`` cuts
whole satellite scenes into blocks predicted one at a time with context margins (memory: one block, the uint8 class
map, probabilities written to disk as they come). Files are written to temporary names and renamed; images whose
outputs exist are skipped unless ``--overwrite``. Each finished image's record is appended to ``summary.jsonl`` at
once and ``summary.json`` is written at the end (also after an error): an interrupted run loses nothing, and the
next run rebuilds the summary from both files.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# GDAL's block cache defaults to 5 % of the RAM; whole scenes are written and read in strips, so a fixed 256 MB
# keeps the peak memory predictable on any machine (a GDAL_CACHEMAX set by the user wins).
os.environ.setdefault('GDAL_CACHEMAX', '256')

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
RASTER_EXTS = ('.tif', '.tiff')
#: Blocks of raster scenes: 1024 x 1024 keeps both SAROSS-Net sizes under 4 GB on a whole IW scene (README, Results).
DEFAULT_GEO_TILE = (1024, 1024)
#: Settings that change what is written; a re-run into a folder written with other values is refused.
KEY_SETTINGS = ('slide', 'stride', 'tile', 'tile_margin', 'pixel_size_m', 'backscatter', 'db_range', 'polarisation',
                'band', 'land_mask', 'min_area_m2', 'simplify_m')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('inputs', nargs='+', help='images, GeoTIFFs, Sentinel-1 GRD .SAFE folders or .zip files, or '
                   'folders of them')
    p.add_argument('--out-dir', default='work_dirs/inference')
    p.add_argument('--device', default='cpu')
    p.add_argument('--slide', type=int, nargs=2, metavar=('H', 'W'), help='sliding-window size')
    p.add_argument('--stride', type=int, nargs=2, metavar=('H', 'W'), help='sliding-window stride (default 2/3)')
    p.add_argument('--tile', type=int, nargs=2, metavar=('H', 'W'),
                   help='predict the scene block by block (bounded memory for whole satellite scenes; each block '
                   'with --tile-margin pixels of context, probabilities written to disk as they come; raster scenes: '
                   f'default {DEFAULT_GEO_TILE[0]} {DEFAULT_GEO_TILE[1]}, larger blocks take more memory)')
    p.add_argument('--tile-margin', type=int, default=128, help='context pixels around each --tile block')
    p.add_argument('--pixel-size-m', type=float, help='ground pixel size in metres (areas in km²)')
    p.add_argument('--opacity', type=float, default=0.5)
    p.add_argument('--save-probs', action='store_true')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--allow-partial', action='store_true',
                   help='segment even when the checkpoint lacks weights of the model, has others or has them in '
                   'other shapes (listed as a warning; those weights stay as initialised)')
    g = p.add_argument_group('raster scenes (GeoTIFF, Sentinel-1 SAFE)')
    g.add_argument('--backscatter', choices=('db', 'linear', 'dn'),
                   help='unit of GeoTIFF pixel values: sigma0 in dB, sigma0 linear power, or dn = 8-bit grey levels '
                   'as the model was trained on; required for non-8-bit GeoTIFFs without the tool\'s unit tag')
    g.add_argument('--db-range', type=float, nargs=2, metavar=('LO', 'HI'), default=[-30.0, 0.0],
                   help='sigma0 dB window mapped linearly to the model\'s 0..255 input (default -30 0)')
    g.add_argument('--polarisation', default='vv', choices=('vv', 'vh', 'hh', 'hv'), help='SAFE band (default vv)')
    g.add_argument('--band', type=int, help='GeoTIFF band to read (1-based; default 1)')
    g.add_argument('--land-mask', default='global',
                   help='global (offline global-land-mask, ~1 km; default), none, or a vector/raster file of land; '
                   'land pixels become the land class (models that have one) or nodata')
    g.add_argument('--min-area-m2', type=float, default=10000.0,
                   help='drop polygons smaller than this (default 10000 m² = 1 ha; 0 keeps every region)')
    g.add_argument('--simplify-m', type=float, default=0.0,
                   help='simplify polygon outlines with this tolerance in metres (default 0: exact pixel outlines; '
                   'areas are always those of the pixels)')
    g.add_argument('--save-input', action='store_true',
                   help='also write inputs/<name>.tif: the model\'s 8-bit input, tagged as such (re-usable as input)')
    return p.parse_args(argv)


def _is_safe_dir(path):
    return osp.isdir(path) and osp.isfile(osp.join(path, 'manifest.safe'))


def _is_raster(path):
    return _is_safe_dir(path) or path.lower().endswith(RASTER_EXTS + ('.zip', ))


def _stem(path):
    from projects.sar_oilspill.geo.scenes import _stem as stem
    return stem(path) if _is_raster(path) else osp.splitext(osp.basename(path))[0]


def collect_inputs(inputs):
    files = []
    for item in inputs:
        item = item.rstrip('/\\') or item
        if osp.isdir(item) and not _is_safe_dir(item):
            found = sorted(osp.join(item, n) for n in os.listdir(item)
                           if n.lower().endswith(IMAGE_EXTS + ('.zip', )) or _is_safe_dir(osp.join(item, n)))
            if not found:
                raise SystemExit(f'{item}: no images ({", ".join(IMAGE_EXTS)}), .SAFE folders or .zip files in this '
                                 'folder')
            files += found
        elif osp.isdir(item):
            files.append(item)
        elif osp.isfile(item):
            files.append(item)
        else:
            raise SystemExit(f'input {item!r} does not exist')
    stems = [_stem(f) for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise SystemExit(f'several inputs share the name(s) {dup[:5]}; outputs would overwrite each other')
    return files


def _write(path, fn):
    from projects.sar_oilspill.utils.atomic import atomic_write
    os.makedirs(osp.dirname(path), exist_ok=True)
    atomic_write(path, fn, keep_suffix=True)


def _imwrite(path, image):
    if not cv2.imwrite(path, image):
        raise OSError(f'could not write {path}')


def read_records(log_path):
    """The per-image records of ``summary.jsonl`` (a later line wins). A torn last line (no newline: the process
    died while appending it) is skipped; any other malformed line is an error naming the file and line."""
    records = {}
    if not osp.isfile(log_path):
        return records
    with open(log_path, encoding='utf-8') as f:
        text = f.read()
    lines = text.split('\n')
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            name = rec.pop('name')
        except (ValueError, KeyError, AttributeError, TypeError) as e:
            if k == len(lines) - 1:  # after the last newline: an unfinished append
                print(f'{log_path}: skipping the unfinished last line {k + 1}')
                continue
            raise SystemExit(f'{log_path}: line {k + 1} is not a JSON record with a "name" ({e}); '
                             'delete the file (or use --overwrite) to segment everything again') from e
        records[name] = rec
    return records


def _drop_unfinished_line(log_path):
    """Cut a torn last record off ``summary.jsonl`` so that new records are not appended to it."""
    if not osp.isfile(log_path):
        return
    with open(log_path, 'rb+') as f:
        data = f.read()
        if data and not data.endswith(b'\n'):
            f.truncate(data.rfind(b'\n') + 1)


def run_settings(args, model):
    """What a re-run into the same folder must share: the model (config text, checkpoint SHA-256) and every
    setting that changes the results."""
    import hashlib
    from projects.sar_oilspill.engine.jointnet_generation_loop import file_sha256
    cfg = getattr(model, 'cfg', None)
    try:
        cfg_text = cfg.pretty_text if cfg is not None else open(args.config, encoding='utf-8').read()
    except Exception:  # noqa: BLE001  (pretty_text formats with yapf; the file is the fallback)
        cfg_text = open(args.config, encoding='utf-8').read()
    out = dict(config_sha256=hashlib.sha256(cfg_text.encode('utf-8')).hexdigest(),
               checkpoint_sha256=file_sha256(args.checkpoint))
    for k in KEY_SETTINGS:
        v = getattr(args, k)
        out[k] = list(v) if isinstance(v, (list, tuple)) else v
    if args.land_mask not in ('global', 'none') and osp.isfile(args.land_mask):
        out['land_mask_sha256'] = file_sha256(args.land_mask)
    return out


def check_run_key(out_dir, settings, overwrite, has_records):
    """Refuse to add to a folder written with other settings or another checkpoint (``--overwrite``: start
    again). Writes ``run.json``."""
    from projects.sar_oilspill.utils.atomic import write_json_atomic
    key_path = osp.join(out_dir, 'run.json')
    if not overwrite:
        if osp.isfile(key_path):
            with open(key_path, encoding='utf-8') as f:
                old = json.load(f)
            diff = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
            if diff:
                what = '; '.join(f'{k}: {old.get(k)!r} there, {settings.get(k)!r} now' for k in diff)
                raise SystemExit(f'{out_dir} holds results of other settings ({what}); use another --out-dir, or '
                                 '--overwrite to recompute every input')
        elif has_records:
            raise SystemExit(f'{out_dir} holds results without run.json (unknown settings and checkpoint); use '
                             'another --out-dir, or --overwrite to recompute every input')
    write_json_atomic(settings, key_path)


def main(argv=None):
    args = parse_args(argv)
    if args.tile is not None and (min(args.tile) < 1 or args.tile_margin < 0):
        raise SystemExit(f'--tile {args.tile[0]} {args.tile[1]} / --tile-margin {args.tile_margin}: expected positive '
                         'block sizes and a margin >= 0')
    if not args.db_range[1] > args.db_range[0]:
        raise SystemExit(f'--db-range {args.db_range[0]:g} {args.db_range[1]:g}: HI must exceed LO')
    if args.min_area_m2 < 0 or args.simplify_m < 0:
        raise SystemExit(f'--min-area-m2 {args.min_area_m2:g} / --simplify-m {args.simplify_m:g}: expected >= 0')
    if args.land_mask not in ('global', 'none') and not osp.exists(args.land_mask):
        raise SystemExit(f'--land-mask {args.land_mask}: no such file (expected global, none or a vector/raster '
                         'file of land)')
    files = collect_inputs(args.inputs)
    from projects.sar_oilspill.apis import init_segmentor
    from projects.sar_oilspill.utils.atomic import write_json_atomic
    from projects.sar_oilspill.visualization.grid import overlay_palette
    try:
        model = init_segmentor(args.config, args.checkpoint, device=args.device, slide=args.slide,
                               stride=args.stride, allow_partial=args.allow_partial)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from e
    meta = getattr(model, 'dataset_meta', None) or {}
    num_classes = int(model.decode_head.num_classes)
    classes = list(meta.get('classes') or [f'class{k}' for k in range(num_classes)])
    palette = overlay_palette(meta.get('palette'), num_classes)
    summary_path = osp.join(args.out_dir, 'summary.json')
    log_path = osp.join(args.out_dir, 'summary.jsonl')
    settings = run_settings(args, model)
    summary = dict(config=args.config, checkpoint=args.checkpoint, classes=classes, settings=settings, images={},
                   failed={})
    if args.overwrite:
        if osp.isfile(log_path):
            os.remove(log_path)
    else:
        if osp.isfile(summary_path):
            with open(summary_path, encoding='utf-8') as f:
                summary['images'] = json.load(f).get('images', {})
        summary['images'].update(read_records(log_path))
        _drop_unfinished_line(log_path)
    os.makedirs(args.out_dir, exist_ok=True)
    check_run_key(args.out_dir, settings, args.overwrite, bool(summary['images']))
    t0, done = time.perf_counter(), 0
    with open(log_path, 'a', encoding='utf-8') as log:
        try:
            done = _segment_all(args, files, model, classes, palette, summary['images'], log, summary['failed'],
                                settings)
        finally:  # also after an error or Ctrl-C: the summary of every finished image
            write_json_atomic(summary, summary_path)
    seconds = time.perf_counter() - t0
    print(f'{done} images segmented in {seconds:.1f} s; masks, overlays and summary.json in {args.out_dir}')
    if summary['failed']:
        lines = '\n'.join(f'  {v["path"]}: {v["error"]}' for v in summary['failed'].values())
        raise SystemExit(f'{len(summary["failed"])} of {len(files)} input(s) failed (listed under "failed" in '
                         f'{summary_path}):\n{lines}')
    return summary


def _predict(args, model, image, num_classes, probs_path):
    """The class map of one image (whole, or block by block with --tile); with --save-probs the float16
    probabilities are written to ``probs_path`` (atomically; with --tile straight into a file on disk)."""
    from projects.sar_oilspill.apis import predict_image, predict_tiled
    if args.tile is None:
        pred = predict_image(model, image, probs=args.save_probs)
        if args.save_probs:
            _write(probs_path, lambda p: np.save(p, pred['probs'].astype(np.float16)))
        return pred['label']
    if not args.save_probs:
        return predict_tiled(model, image, args.tile, args.tile_margin)
    result = {}

    def fill(p):
        probs = np.lib.format.open_memmap(p, mode='w+', dtype=np.float16, shape=(num_classes, ) + image.shape[:2])
        result['label'] = predict_tiled(model, image, args.tile, args.tile_margin, probs_out=probs)
        probs.flush()
        del probs

    _write(probs_path, fill)
    return result['label']


def _outputs_exist(out_dir, rec, args):
    outs = rec.get('outputs')
    if outs is None:  # a record of an older version: its mask and overlay
        return False
    if args.save_probs and 'probs' not in outs or args.save_input and rec.get('kind') != 'image' and \
            'input' not in outs:
        return False
    return all(osp.isfile(osp.join(out_dir, o)) for o in outs.values())


def _segment_all(args, files, model, classes, palette, records, log, failed, settings):
    """Segment every input not finished yet; append each record to ``log``; record failures in ``failed`` and go
    on. Returns the number segmented."""
    from tqdm import tqdm
    num_classes = int(getattr(model, 'out_channels', None) or model.decode_head.out_channels)  # probability maps
    done = 0
    bar = tqdm(files, unit='scene', desc='inference', dynamic_ncols=True)
    for path in bar:
        name = _stem(path)
        if not args.overwrite and name in records and _outputs_exist(args.out_dir, records[name], args):
            failed.pop(name, None)
            continue
        bar.set_postfix_str(name[-40:])
        t0 = time.perf_counter()
        try:
            if _is_raster(path):
                rec = _segment_scene(args, path, name, model, classes, palette, num_classes, settings, bar)
            else:
                rec = _segment_image(args, path, name, model, classes, palette, num_classes)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001  (one bad scene must not stop a batch; listed at the end)
            failed[name] = dict(path=path, error=f'{type(e).__name__}: {e}')
            tqdm.write(f'FAILED {path}: {failed[name]["error"]}')
            continue
        rec['seconds'] = round(time.perf_counter() - t0, 3)
        failed.pop(name, None)
        records[name] = rec
        log.write(json.dumps(dict(name=name, **rec)) + '\n')
        log.flush()
        done += 1
        oil = rec['classes'].get('oil_spill')
        oil_txt = '' if oil is None else f', oil {100 * oil["fraction"]:.2f}%' + (
            f' ({oil["km2"]:.3f} km²)' if 'km2' in oil else '')
        poly = rec.get('polygons')
        poly_txt = '' if not poly else ', ' + ', '.join(f'{v["count"]} {k} polygon(s)' for k, v in poly.items())
        tqdm.write(f'{path}: {rec["width"]}x{rec["height"]}{oil_txt}{poly_txt}')
    return done


def _segment_image(args, path, name, model, classes, palette, num_classes):
    """An 8-bit PNG/JPEG/BMP image, whole in memory (as before the raster path existed)."""
    from projects.sar_oilspill.apis import class_areas
    from projects.sar_oilspill.datasets.image_io import read_image
    from projects.sar_oilspill.visualization.grid import overlay_labels
    outputs = dict(mask=f'masks/{name}.png', overlay=f'overlays/{name}.png')
    if args.save_probs:
        outputs['probs'] = f'probs/{name}.npy'
    # the strict reader of training and check_dataset.py: a truncated file is refused, not padded grey
    image = read_image(path, 'color')
    label = _predict(args, model, image, num_classes, osp.join(args.out_dir, outputs.get('probs', 'probs/x.npy')))
    _write(osp.join(args.out_dir, outputs['mask']), lambda p: _imwrite(p, label.astype(np.uint8)))
    over = overlay_labels(image[..., ::-1], label, palette, alpha=args.opacity)
    _write(osp.join(args.out_dir, outputs['overlay']), lambda p: _imwrite(p, np.ascontiguousarray(over[..., ::-1])))
    return dict(path=path, kind='image', height=int(label.shape[0]), width=int(label.shape[1]),
                classes=class_areas(label, classes, args.pixel_size_m), outputs=outputs)


class _SceneSource:
    """Blocks of a raster scene for ``predict_tiled``; keeps the nodata (1) and land (2) status of the block it read
    last, which ``predict_tiled`` writes out before it reads the next."""

    def __init__(self, scene, land):
        self.scene, self.land = scene, land
        self.shape = scene.shape
        self._last = None

    def __getitem__(self, key):
        ys, xs = key
        grey, valid = self.scene.read(ys.start, ys.stop, xs.start, xs.stop)
        st = np.where(valid, 0, 1).astype(np.uint8)
        if self.land is not None:
            st[(st == 0) & self.land.block(self.scene.georef, ys.start, ys.stop, xs.start, xs.stop)] = 2
        self._last = (ys.start, xs.start, st)
        return grey

    def status(self, rows, cols):
        y0, x0, st = self._last
        return st[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0]


class _SceneSink:
    """``label_out`` (and ``.conf``: ``conf_out``) of ``predict_tiled`` for a scene, so that nothing of the scene's
    size is held in memory: each block's nodata and land (the source's status) are applied, then the block goes to
    the class map GeoTIFF, to the polygon regions raster (the reported classes, 0 elsewhere) and to the
    confidence raster; class pixels are counted on the way."""

    def __init__(self, source, class_map, regions, conf, land_id, poly_ids):
        from projects.sar_oilspill.geo.writers import NODATA
        self.source, self.class_map, self.regions, self.land_id = source, class_map, regions, land_id
        self.shape = tuple(source.shape[:2])
        self.nodata_value = NODATA
        self.keep = np.zeros(256, np.uint8)
        self.keep[list(poly_ids)] = list(poly_ids)
        self.counts = np.zeros(256, np.int64)
        self.n_nodata = self.n_land = 0
        self.conf = _ConfSink(self, conf) if conf is not None else None

    def __setitem__(self, key, block):
        st = self.source.status(*key)
        nd, ld = st == 1, st == 2
        lab = np.array(block, np.uint8)
        lab[nd] = self.nodata_value
        lab[ld] = self.nodata_value if self.land_id is None else self.land_id
        self.n_nodata += int(nd.sum())
        self.n_land += int(ld.sum())
        self.counts += np.bincount(lab.ravel(), minlength=256)
        self.class_map[key] = lab
        if self.regions is not None:
            self.regions[key] = self.keep[lab]


class _ConfSink:
    """The ``conf_out`` of a :class:`_SceneSink`: nodata confidence 0, land 255 (models with a land class) or 0."""

    def __init__(self, sink, writer):
        self.sink, self.writer, self.shape = sink, writer, sink.shape

    def __setitem__(self, key, block):
        st = self.sink.source.status(*key)
        cf = np.array(block, np.uint8)
        cf[st == 1] = 0
        cf[st == 2] = 0 if self.sink.land_id is None else 255
        self.writer[key] = cf


_LAND_CACHE = {}


def _land_mask(spec, georef):
    from projects.sar_oilspill.geo import open_land_mask
    if spec in ('global', 'none'):
        return open_land_mask(spec, georef)
    if spec not in _LAND_CACHE:
        _LAND_CACHE.clear()
        _LAND_CACHE[spec] = open_land_mask(spec, georef)
    return _LAND_CACHE[spec]


def _segment_scene(args, path, name, model, classes, palette, num_classes, settings, bar):
    """A GeoTIFF or SAFE product, block by block: GeoTIFF outputs, polygons and a quicklook. Nothing of the scene's
    size is held in memory: the class map is written block by block as it is predicted (with the confidence and the
    polygon regions into scratch GeoTIFFs under the output folder), and everything after is read back from disk."""
    import shutil
    import warnings
    from contextlib import ExitStack

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from tqdm import tqdm
    from projects.sar_oilspill.apis import predict_tiled
    from projects.sar_oilspill.geo import SceneError, extract_polygons, open_scene, write_vectors
    from projects.sar_oilspill.geo.writers import NODATA, BandWriter, ClassMapWriter, ProbsWriter, quicklook
    scene = open_scene(path, args.backscatter, args.db_range, args.band, args.polarisation)
    scratch = osp.join(args.out_dir, f'.scratch-{name}')
    try:
        georef = scene.georef
        if georef is None and args.land_mask not in ('global', 'none'):
            raise SceneError(f'{path}: not georeferenced, so --land-mask {args.land_mask} cannot be applied; pass '
                             '--land-mask none')
        land = _land_mask(args.land_mask, georef) if georef is not None else None
        height, width = scene.shape
        tile = tuple(args.tile or DEFAULT_GEO_TILE)
        nblocks = -(-height // tile[0]) * -(-width // tile[1])
        outputs = dict(mask=f'masks/{name}.tif', overlay=f'overlays/{name}.tif')
        tags = dict(scene=osp.basename(osp.normpath(path)), config=args.config,
                    checkpoint_sha256=settings['checkpoint_sha256'], backscatter=scene.unit,
                    backscatter_from=scene.unit_from, db_range=' '.join(f'{v:g}' for v in args.db_range),
                    scaling='grey = round(255 * clip((sigma0_dB - LO) / (HI - LO), 0, 1))',
                    land_mask=args.land_mask if georef is not None else 'none (not georeferenced)')
        land_id = classes.index('land') if 'land' in classes else None
        poly_ids = [k for k, c in enumerate(classes) if k != 0 and k != land_id]
        source = _SceneSource(scene, land)
        shutil.rmtree(scratch, ignore_errors=True)  # left by a killed run
        os.makedirs(scratch)
        regions_path, conf_path = osp.join(scratch, 'regions.tif'), osp.join(scratch, 'confidence.tif')
        found = {}

        def predict(mask_path):
            sub = tqdm(total=nblocks, unit='block', leave=False, desc=name[-30:], dynamic_ncols=True,
                       disable=nblocks < 4 or bar.disable)
            with ExitStack() as stack:
                stack.callback(sub.close)
                class_map = stack.enter_context(ClassMapWriter(mask_path, scene, classes, palette, tags))
                regions = conf = None
                if georef is not None:  # the polygons' inputs
                    regions = stack.enter_context(BandWriter(regions_path, scene, georef=False))
                    conf = stack.enter_context(BandWriter(conf_path, scene, georef=False))
                sink = _SceneSink(source, class_map, regions, conf, land_id, poly_ids)
                kw = dict(label_out=sink, conf_out=sink.conf, progress=lambda d, t: sub.update(1))
                if args.save_probs:
                    outputs['probs'] = f'probs/{name}.tif'
                    names = classes if num_classes == len(classes) else [f'channel{k}' for k in range(num_classes)]

                    def fill(p):
                        with ProbsWriter(p, scene, names, tags) as w:
                            predict_tiled(model, source, tile, args.tile_margin, probs_out=w, **kw)

                    _write(osp.join(args.out_dir, outputs['probs']), fill)
                else:
                    predict_tiled(model, source, tile, args.tile_margin, **kw)
            found.update(counts=sink.counts, n_nodata=sink.n_nodata, n_land=sink.n_land)

        _write(osp.join(args.out_dir, outputs['mask']), predict)
        counts = found['counts']
        if args.save_input:
            outputs['input'] = f'inputs/{name}.tif'
        with ExitStack() as stack, warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            label = stack.enter_context(rasterio.open(osp.join(args.out_dir, outputs['mask'])))
            _write_overlay(args, outputs, scene, label, palette, tags)
            valid_total = max(int(counts[:NODATA].sum()), 1)
            px_m = georef.pixel_size_m() if georef is not None else args.pixel_size_m
            areas = {}
            for k, cname in enumerate(classes):
                areas[cname] = dict(pixels=int(counts[k]), fraction=float(counts[k]) / valid_total)
                if px_m is not None:
                    areas[cname]['km2'] = float(counts[k]) * px_m ** 2 / 1e6
            rec = dict(path=path, kind=scene.kind, height=int(height), width=int(width), classes=areas,
                       nodata_pixels=found['n_nodata'], land_pixels=found['n_land'], pixel_size_m=px_m,
                       scene=scene.describe(), georef=georef.describe() if georef is not None else None)
            feats = []
            if georef is not None:
                regions = stack.enter_context(rasterio.open(regions_path))
                conf = stack.enter_context(rasterio.open(conf_path))
                feats = extract_polygons(regions, georef, classes, poly_ids, conf=conf,
                                         min_area_m2=args.min_area_m2, simplify_m=args.simplify_m,
                                         extra=dict(scene=name, config=args.config,
                                                    checkpoint_sha256=settings['checkpoint_sha256']))
                outputs['geojson'] = f'polygons/{name}.geojson'
                outputs['gpkg'] = f'polygons/{name}.gpkg'
                for key, driver in (('geojson', 'GeoJSON'), ('gpkg', 'GPKG')):
                    _write(osp.join(args.out_dir, outputs[key]),
                           lambda p, d=driver: write_vectors(feats, p, d, name))
                rec['polygons'] = {classes[k]: dict(
                    count=sum(f['properties']['class'] == classes[k] for f in feats),
                    area_km2=sum(f['properties']['area_m2'] for f in feats
                                 if f['properties']['class'] == classes[k]) / 1e6)
                    for k in poly_ids}
            outputs['quicklook'] = f'quicklooks/{name}.png'
            ql = quicklook(scene, label, palette, feats, classes)
        _write(osp.join(args.out_dir, outputs['quicklook']), lambda p: _imwrite(p, ql))
        rec['outputs'] = outputs
        return rec
    finally:
        scene.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _write_overlay(args, outputs, scene, label, palette, tags):
    """Overlay (and with --save-input the model's input) GeoTIFFs, both from one pass over the scene."""
    from projects.sar_oilspill.geo.writers import write_overlay_and_input
    from projects.sar_oilspill.utils.atomic import atomic_write
    over = osp.join(args.out_dir, outputs['overlay'])
    inp = osp.join(args.out_dir, outputs['input']) if 'input' in outputs else None
    for p in (over, inp):
        if p:
            os.makedirs(osp.dirname(p), exist_ok=True)
    if inp is None:
        atomic_write(over, lambda p: write_overlay_and_input(scene, label, palette, args.opacity, p, None, tags),
                     keep_suffix=True)
        return
    atomic_write(over, lambda po: atomic_write(inp, lambda pi: write_overlay_and_input(
        scene, label, palette, args.opacity, po, pi, tags), keep_suffix=True), keep_suffix=True)


if __name__ == '__main__':
    main()
