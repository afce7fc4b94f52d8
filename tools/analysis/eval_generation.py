"""Quality of a generated D_aug set: FID / IS, speckle statistics, class shares and confidence of the soft labels,
label-image consistency.

Examples:
    # offline measures only (speckle statistics, histogram distances)
    python tools/analysis/eval_generation.py work_dirs/daug_sos --real-root data/sos/train/palsar
    # + FID / IS with the TorchScript Inception-v3 of StyleGAN2-ADA (no download: bring the file)
    python tools/analysis/eval_generation.py work_dirs/daug_sos --real-root data/sos/train/palsar \
        --inception weights/inception-2015-12-05.pt --out work_dirs/daug_sos_metrics.json
    # + label-image consistency: a segmenter trained on real data segments the generated tiles
    python tools/analysis/eval_generation.py work_dirs/daug_osd --real-root data/osd/train/images \
        --real-type osd --seg-config configs/saross/osd.py --seg-checkpoint work_dirs/osd/iter_80000.pth

Exit status: 0 on success, 2 on a usage / input error (message on stderr).
"""
import argparse
import os
import math  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, Iterable, Iterator, List, Optional  # noqa: E402

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import numpy as np  # noqa: E402

from projects.sar_oilspill.evaluation.fid import (INCEPTION_FILE, InceptionFeatureExtractor,  # noqa: E402
                                                  compute_fid_is)
from projects.sar_oilspill.evaluation.image_sets import (class_shares, list_real_images, load_daug,  # noqa: E402
                                                         read_image, real_label_maps)
from projects.sar_oilspill.evaluation.label_consistency import (label_image_consistency,  # noqa: E402
                                                                soft_label_confidence)
from projects.sar_oilspill.evaluation.speckle_stats import speckle_statistics  # noqa: E402
from projects.sar_oilspill.datasets.daug import read_daug_image, read_daug_logits, read_daug_valid  # noqa: E402
from projects.sar_oilspill.utils.atomic import json_safe, write_json_atomic  # noqa: E402

IGNORE_INDEX = 255  # label of the pixels a masked D_aug leaves unlabelled, in the label-image consistency


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Measure the quality of a generated D_aug set',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('daug_root', help='D_aug folder (manifest.json, images/, logits/)')
    parser.add_argument('--real-root', required=True,
                        help='folder of real tiles, e.g. data/sos/train/palsar or data/osd/train/images')
    parser.add_argument('--real-type', choices=['auto', 'sos', 'osd', 'folder'], default='auto',
                        help='how to list the real tiles (auto: sos when *_sat.jpg files exist, else folder)')
    parser.add_argument('--real-list', help='keep only the real tiles whose ids this file lists, one a line (e.g. the '
                                            'train.txt of tools/dataset_tools/make_val_split.py: the training part)')
    parser.add_argument('--inception', help=f'TorchScript Inception-v3 ({INCEPTION_FILE}) for FID / IS; '
                                            'without it FID / IS are skipped (nothing is downloaded)')
    parser.add_argument('--seg-config', help='segmentor config for label-image consistency')
    parser.add_argument('--seg-checkpoint', help='segmentor checkpoint for label-image consistency')
    parser.add_argument('--max-samples', type=int,
                        help='use at most N generated and N real tiles (first in name order)')
    parser.add_argument('--batch-size', type=int, default=32, help='Inception batch size')
    parser.add_argument('--enl-window', type=int, default=16,
                        help='ENL window (0: whole image); see equivalent_number_of_looks')
    parser.add_argument('--enl-fraction', type=float, default=0.5,
                        help='fraction of most homogeneous windows averaged for the ENL')
    parser.add_argument('--logit-offset', nargs='+', default=[], metavar='CLASS=VALUE',
                        help='add VALUE to the generated logits of CLASS (a name or an index) before the label shares '
                             'and the label-image consistency are measured: a probe of relabelling by prior shift, '
                             'e.g. oil_spill=6.75 (the files are not changed)')
    parser.add_argument('--kd-temperature', type=float, default=2.0,
                        help='temperature of the soft labels\' entropy and top-1 probability (the KD temperature '
                             'of the DAKD loss)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--device', default='cpu', help='torch device for Inception and the segmentor')
    args = parser.parse_args(argv)
    if bool(args.seg_config) != bool(args.seg_checkpoint):
        parser.error('--seg-config and --seg-checkpoint go together')
    if not args.kd_temperature > 0:
        parser.error(f'--kd-temperature must be > 0, got {args.kd_temperature}')
    if args.max_samples is not None and args.max_samples < 1:
        parser.error('--max-samples must be >= 1')
    return args


def build_seg_predictor(config: str, checkpoint: str, device: str, classes: List[str]
                        ) -> Callable[[np.ndarray], np.ndarray]:
    """A segmentor (mmseg ``init_model``) as a function image -> (H, W) class map (``inference_model``).

    Generated tiles are fed as 3-channel BGR arrays, like real JPEG tiles read by ``LoadImageFromFile``. Label
    loaders are removed from the config's test pipeline (there is no ground truth file).
    """
    import cv2

    from projects.sar_oilspill.apis import init_segmentor, predict_image
    from projects.sar_oilspill.utils.checkpoint_compat import check_num_classes
    model = init_segmentor(config, checkpoint, device=device)
    check_num_classes(model, classes, 'the D_aug')

    def predict(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        else:
            bgr = np.ascontiguousarray(image[..., ::-1])
        return predict_image(model, bgr)['label']

    return predict


def filter_real_paths(paths: List[str], root: str, list_file: str) -> List[str]:
    """The paths of ``paths`` whose id is listed in ``list_file``; an id is the path relative to ``root`` without
    its image suffix (``<id>_sat.jpg`` for SOS, else the extension). A listed id with no image is an error."""
    from projects.sar_oilspill.datasets.val_split import read_id_list
    wanted = set(read_id_list(list_file))
    kept, found = [], set()
    for p in paths:
        rel = osp.relpath(p, root).replace(os.sep, '/')
        stem = rel[:-len('_sat.jpg')] if rel.endswith('_sat.jpg') else osp.splitext(rel)[0]
        if stem in wanted:
            kept.append(p)
            found.add(stem)
    missing = sorted(wanted - found)
    if missing:
        raise FileNotFoundError(f'--real-list {list_file}: {len(missing)} listed ids have no image under {root!r}, '
                                f'e.g. {missing[:5]}')
    return kept


def format_table(results: Dict) -> str:
    from prettytable import PrettyTable
    table = PrettyTable(['measure', 'real', 'generated'])
    table.align = 'r'
    table.align['measure'] = 'l'
    sp = results['speckle']
    for key, label in (('num_images', 'images'), ('mean', 'grey-level mean'), ('std', 'grey-level std'),
                       ('enl_mean', 'ENL (mean over images)'), ('enl_median', 'ENL (median over images)')):
        fmt = (lambda v: str(v)) if key == 'num_images' else (lambda v: f'{v:.3f}')
        table.add_row([label, fmt(sp['real'][key]), fmt(sp['gen'][key])])
    mask = results.get('label_mask')
    if mask:
        table.add_row(['labelled pixels of the masked D_aug (%)', '', f'{100 * mask["labelled_share"]:.2f}'])
    shares = results.get('label_shares')
    if shares:
        for k, name in enumerate(results['classes']):
            real = shares['real'][k] if shares['real'] else None
            table.add_row([f'{name} pixel share (%)', 'n/a' if real is None else f'{100 * real:.2f}',
                           f'{100 * shares["generated"][k]:.2f}'])
    lines = [table.get_string()]
    table = PrettyTable(['measure', 'value'])
    table.align = 'l'
    table.add_row(['histogram Jensen-Shannon distance', f'{sp["distance"]["js"]:.4f}'])
    table.add_row(['histogram Wasserstein-1 (grey levels)', f'{sp["distance"]["w1"]:.3f}'])
    table.add_row(['ENL ratio (gen / real)', f'{sp["distance"]["enl_ratio"]:.3f}'])
    fi = results.get('fid_is')
    if fi:
        table.add_row(['FID', f'{fi["fid"]:.3f}'])
        table.add_row(['IS', f'{fi["is_mean"]:.3f} ± {fi["is_std"]:.3f}'])
    else:
        table.add_row(['FID / IS', 'skipped (no --inception weights)'])
    conf = results.get('label_confidence')
    if conf:
        table.add_row(['soft labels: top-1 logit margin p10 / p50 / p90',
                       f'{conf["margin_p10"]:.2f} / {conf["margin_p50"]:.2f} / {conf["margin_p90"]:.2f}'])
        table.add_row(['soft labels: pixels with margin < 1 (%)', f'{100 * conf["share_margin_below_1"]:.2f}'])
        table.add_row([f'soft labels: mean entropy at T = {conf["temperature"]:g} (nats)',
                       f'{conf["mean_entropy"]:.4f}'])
    lc = results.get('label_consistency')
    if lc:
        table.add_row(['label-image consistency mIoU (%)', f'{100 * lc["mIoU"]:.2f}'])
        table.add_row(['label-image consistency aAcc (%)', f'{100 * lc["aAcc"]:.2f}'])
        for name, v in lc['IoU'].items():
            table.add_row([f'  IoU {name} (%)', f'{100 * v:.2f}' if math.isfinite(v) else 'n/a'])
        for name, v in (lc.get('pred_share') or {}).items():
            table.add_row([f'  segmenter predicts {name} on (% of pixels)', f'{100 * v:.2f}'])
    else:
        table.add_row(['label-image consistency', 'skipped (no --seg-config / --seg-checkpoint)'])
    lines.append(table.get_string())
    return '\n'.join(lines)


def parse_logit_offsets(items: List[str], classes: List[str]) -> Optional[np.ndarray]:
    """``['oil_spill=6.75', '0=-1']`` -> a (K,) offset vector (None for no items); errors name the item."""
    if not items:
        return None
    offset = np.zeros(len(classes), np.float64)
    for item in items:
        key, sep, value = item.partition('=')
        try:
            k = int(key) if key.strip().lstrip('-').isdigit() else classes.index(key.strip())
            v = float(value)
        except ValueError:
            k, v = None, None
        if not sep or k is None or not 0 <= k < len(classes) or not math.isfinite(v):
            raise ValueError(f'--logit-offset {item!r}: expected CLASS=VALUE with CLASS one of {classes} or an '
                             f'index 0..{len(classes) - 1} and a finite VALUE')
        offset[k] += v
    return offset


def read_offset_logits(path: str, num_classes: int, offset: Optional[np.ndarray] = None) -> np.ndarray:
    """The generated ``(K, H, W)`` logits of ``path`` (float64), plus ``offset`` per class when given."""
    logits = read_daug_logits(path, num_classes).astype(np.float64)
    return logits if offset is None else logits + offset[:, None, None]


class GeneratedLabelShares:
    """Class shares of the generated labels (argmax of the logits; also the mean softmax probability), counted
    as the logits stream past :meth:`observe` on their way to another measure, so that one read of each logits
    file serves both (an OSD-sized D_aug holds gigabytes of them). A generator whose labels hold far less of a
    class than the real set pulls the student's prior for that class down."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.counts = np.zeros(num_classes, np.int64)
        self.prob = np.zeros(num_classes, np.float64)

    def observe(self, logit_maps: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yields each ``(K, H, W)`` logits map of ``logit_maps`` unchanged, after counting it."""
        for logits in logit_maps:
            self.counts += np.bincount(logits.argmax(0).ravel(), minlength=self.num_classes)
            e = np.exp(logits - logits.max(0, keepdims=True))
            self.prob += (e / e.sum(0, keepdims=True)).reshape(self.num_classes, -1).sum(1)
            yield logits

    def shares(self, real_labels: Optional[Iterable[np.ndarray]] = None) -> Dict:
        """``dict(generated, generated_mean_prob, real)``; ``real`` from the real tiles' label maps (None for a
        folder of images without labels)."""
        total = self.counts.sum()
        if total == 0:
            raise ValueError('GeneratedLabelShares: no generated logits were observed')
        return dict(generated=(self.counts / total).tolist(), generated_mean_prob=(self.prob / total).tolist(),
                    real=None if real_labels is None else class_shares(real_labels, self.num_classes))


def run(args: argparse.Namespace) -> Dict:
    t0 = time.time()
    manifest, samples = load_daug(args.daug_root, args.max_samples)
    if args.real_list:
        real_paths = filter_real_paths(list_real_images(args.real_root, args.real_type), args.real_root,
                                       args.real_list)[:args.max_samples]
    else:
        real_paths = list_real_images(args.real_root, args.real_type, args.max_samples)
    num_classes = int(manifest['num_classes'])
    classes = list(manifest.get('classes') or [str(k) for k in range(num_classes)])
    offset = parse_logit_offsets(args.logit_offset, classes)
    extractor = InceptionFeatureExtractor(args.inception, device=args.device, batch_size=args.batch_size) \
        if args.inception else None
    predictor = build_seg_predictor(args.seg_config, args.seg_checkpoint, args.device, classes) \
        if args.seg_config else None

    def gen_images():
        return (read_daug_image(s['img_path']) for s in samples)

    def real_images():
        return (read_image(p) for p in real_paths)

    results = dict(daug_root=osp.abspath(args.daug_root), real_root=osp.abspath(args.real_root),
                   real_type=args.real_type, real_list=args.real_list and osp.abspath(args.real_list),
                   classes=classes, num_gen=len(samples), num_real=len(real_paths),
                   logit_offset=None if offset is None else dict(zip(classes, offset.tolist())))
    masked = bool(manifest.get('label_mask'))  # e.g. relabel_daug.py --labels source-agreed
    mask_count = [0, 0]  # labelled, all pixels (counted on the confidence pass)

    def labelled_logits(s: Dict) -> np.ndarray:
        """The sample's logits; of a masked D_aug only its labelled pixels, as (K, 1, M)."""
        logits = read_offset_logits(s['logits_path'], num_classes, offset)
        if s.get('valid_path') is None:
            return logits
        valid = read_daug_valid(s['valid_path'], logits.shape[1:])
        mask_count[0] += int(valid.sum())
        mask_count[1] += valid.size
        return logits[:, valid][:, None, :]

    def labelled_map(s: Dict) -> np.ndarray:
        """The sample's argmax label, ``IGNORE_INDEX`` where a masked D_aug carries no label."""
        logits = read_offset_logits(s['logits_path'], num_classes, offset)
        label = logits.argmax(0)
        if s.get('valid_path') is not None:
            label[~read_daug_valid(s['valid_path'], logits.shape[1:])] = IGNORE_INDEX
        return label

    results['speckle'] = speckle_statistics(real_images(), gen_images(), enl_window=args.enl_window or None,
                                            enl_homogeneous_fraction=args.enl_fraction)
    results['speckle']['enl_convention'] = (
        f'intensity = grey level^2 (amplitude tiles), window={args.enl_window or "whole image"}, '
        f'homogeneous_fraction={args.enl_fraction}')
    shares = GeneratedLabelShares(num_classes)  # counted while soft_label_confidence reads: one pass
    results['label_confidence'] = soft_label_confidence(
        shares.observe(labelled_logits(s) for s in samples), args.kd_temperature)
    if masked:  # the label measures count the labelled pixels only
        results['label_mask'] = dict(labelled_share=mask_count[0] / max(mask_count[1], 1),
                                     note='label shares, confidence and consistency count the labelled pixels of '
                                          'the valid/ masks only')
    results['label_shares'] = shares.shares(real_label_maps(args.real_root, args.real_type, real_paths))
    if extractor is not None:
        results['fid_is'] = compute_fid_is(real_images(), gen_images(), extractor, batch_size=args.batch_size)
        results['inception'] = osp.abspath(args.inception)
    else:
        results['fid_is'] = None
        results['fid_is_skipped'] = f'no Inception weights given (--inception PATH to {INCEPTION_FILE})'
    if predictor is not None:
        pairs = ((read_daug_image(s['img_path']), labelled_map(s)) for s in samples)
        results['label_consistency'] = label_image_consistency(predictor, pairs, num_classes, classes,
                                                               ignore_index=IGNORE_INDEX)
        results['segmentor'] = dict(config=osp.abspath(args.seg_config),
                                    checkpoint=osp.abspath(args.seg_checkpoint))
    else:
        results['label_consistency'] = None
    results['seconds'] = round(time.time() - t0, 2)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        results = run(args)
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'D_aug {results["daug_root"]}: {results["num_gen"]} generated tiles vs {results["num_real"]} real '
          f'tiles ({results["real_root"]})')
    if results['logit_offset']:
        print('generated logits offset (a probe; files unchanged): '
              + ', '.join(f'{k} {v:+g}' for k, v in results['logit_offset'].items() if v))
    print(format_table(results))
    if results['fid_is'] is None:
        print(f'FID/IS skipped: no Inception weights were given. Nothing can be downloaded here; obtain '
              f'{INCEPTION_FILE} (StyleGAN2-ADA metrics) and pass --inception PATH.')
    if args.out:
        write_json_atomic(json_safe(results), args.out)
        print(f'results written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
