"""Segment SAR images or whole scenes with a trained model: class maps, overlays and oil-spill areas.

Examples:
    python tools/inference.py configs/saross/osd.py CKPT scene1.png scenes/ --out-dir work_dirs/infer
    python tools/inference.py configs/saross/sos_alos.py CKPT big_scene.tif --slide 512 512 --pixel-size-m 12.5

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
# Set before torch loads: without an explicit OpenMP thread count CPU runs were up to 30x slower here (README).
os.environ.setdefault('OMP_NUM_THREADS', str(len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                                             else os.cpu_count() or 1))
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('inputs', nargs='+', help='image files or folders')
    p.add_argument('--out-dir', default='work_dirs/inference')
    p.add_argument('--device', default='cpu')
    p.add_argument('--slide', type=int, nargs=2, metavar=('H', 'W'), help='sliding-window size')
    p.add_argument('--stride', type=int, nargs=2, metavar=('H', 'W'), help='sliding-window stride (default 2/3)')
    p.add_argument('--tile', type=int, nargs=2, metavar=('H', 'W'),
                   help='predict the scene block by block (bounded memory for whole satellite scenes; each block '
                   'with --tile-margin pixels of context, probabilities written to disk as they come)')
    p.add_argument('--tile-margin', type=int, default=128, help='context pixels around each --tile block')
    p.add_argument('--pixel-size-m', type=float, help='ground pixel size in metres (areas in km²)')
    p.add_argument('--opacity', type=float, default=0.5)
    p.add_argument('--save-probs', action='store_true')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--allow-partial', action='store_true',
                   help='segment even when the checkpoint lacks weights of the model, has others or has them in '
                   'other shapes (listed as a warning; those weights stay as initialised)')
    return p.parse_args(argv)


def collect_inputs(inputs):
    files = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(item, n) for n in os.listdir(item) if n.lower().endswith(IMAGE_EXTS))
            if not found:
                raise SystemExit(f'{item}: no images ({", ".join(IMAGE_EXTS)}) in this folder')
            files += found
        elif osp.isfile(item):
            files.append(item)
        else:
            raise SystemExit(f'input {item!r} does not exist')
    stems = [osp.splitext(osp.basename(f))[0] for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise SystemExit(f'several inputs share the name(s) {dup[:5]}; outputs would overwrite each other')
    return files


def _write(path, fn):
    from projects.sar_oilspill.datasets.daug import atomic_write
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


def main(argv=None):
    args = parse_args(argv)
    if args.tile is not None and (min(args.tile) < 1 or args.tile_margin < 0):
        raise SystemExit(f'--tile {args.tile[0]} {args.tile[1]} / --tile-margin {args.tile_margin}: expected positive '
                         'block sizes and a margin >= 0')
    files = collect_inputs(args.inputs)
    from projects.sar_oilspill.apis import init_segmentor
    from projects.sar_oilspill.utils.cli import write_json_atomic
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
    summary = dict(config=args.config, checkpoint=args.checkpoint, classes=classes, images={})
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
    t0, done = time.perf_counter(), 0
    with open(log_path, 'a', encoding='utf-8') as log:
        try:
            done = _segment_all(args, files, model, classes, palette, summary['images'], log)
        finally:  # also after an error or Ctrl-C: the summary of every finished image
            write_json_atomic(summary, summary_path)
    seconds = time.perf_counter() - t0
    print(f'{done} images segmented in {seconds:.1f} s; masks, overlays and summary.json in {args.out_dir}')
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


def _segment_all(args, files, model, classes, palette, records, log):
    """Segment every file not finished yet; append each record to ``log``. Returns the number segmented."""
    from projects.sar_oilspill.apis import class_areas
    from projects.sar_oilspill.datasets.image_io import ImageReadError, read_image
    from projects.sar_oilspill.visualization.grid import overlay_labels
    num_classes = int(getattr(model, 'out_channels', None) or model.decode_head.out_channels)  # probability maps
    done = 0
    for i, path in enumerate(files):
        name = osp.splitext(osp.basename(path))[0]
        mask_path = osp.join(args.out_dir, 'masks', name + '.png')
        overlay_path = osp.join(args.out_dir, 'overlays', name + '.png')
        if not args.overwrite and osp.isfile(mask_path) and osp.isfile(overlay_path) and name in records:
            continue
        try:  # the strict reader of training and check_dataset.py: a truncated file is refused, not padded grey
            image = read_image(path, 'color')
        except ImageReadError as e:
            raise SystemExit(f'{e} (images: {", ".join(IMAGE_EXTS)})') from e
        label = _predict(args, model, image, num_classes, osp.join(args.out_dir, 'probs', name + '.npy'))
        _write(mask_path, lambda p: _imwrite(p, label.astype(np.uint8)))
        over = overlay_labels(image[..., ::-1], label, palette, alpha=args.opacity)
        _write(overlay_path, lambda p: _imwrite(p, np.ascontiguousarray(over[..., ::-1])))
        records[name] = dict(path=path, height=int(label.shape[0]), width=int(label.shape[1]),
                             classes=class_areas(label, classes, args.pixel_size_m))
        log.write(json.dumps(dict(name=name, **records[name])) + '\n')
        log.flush()
        done += 1
        areas = records[name]['classes']
        oil = areas.get('oil_spill')
        oil_txt = '' if oil is None else f', oil {100 * oil["fraction"]:.2f}%' + (
            f' ({oil["km2"]:.3f} km²)' if 'km2' in oil else '')
        print(f'[{i + 1}/{len(files)}] {path}: {label.shape[1]}x{label.shape[0]}{oil_txt}')
    return done


if __name__ == '__main__':
    main()
