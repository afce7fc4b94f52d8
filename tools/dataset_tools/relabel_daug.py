"""Write a copy of a D_aug folder whose soft labels come from a segmentor instead of the generator's Label-Net.

The DAKD study asks whether the generated tiles help a student. A D_aug has two parts, the images and their soft
labels, and a loss against real-only training can come from either. This tool keeps the images and replaces the
labels with a segmentor's logits on them (for the study: the real-only student of the same seed), so a student
trained on the copy sees the generator's images with labels that agree with what a segmentor trained on real tiles
sees in them, as in self-training with pseudo-labels. Compared with the teacher's D_aug it isolates the labels;
compared with real only, the images.

``--labels source-agreed`` keeps the source's own logits instead, but only where the segmentor's argmax agrees with
the source's (a consensus filter of the generated labels, as in pseudo-label filtering): the copy is a masked D_aug
(``valid/<name>.png``, ``label_mask: true``), and a student's KD and Dice losses skip the other pixels. Against the
source it measures what the disagreeing pixels' labels cost; against the segmentor's labels, what the source's
labels do where both agree.

Every complete sample the source manifest lists is written under the same name: the 8-bit image copied (PNG,
lossless) and the segmentor's logits at the tile's size (mmseg's ``seg_logits``, from the config's test pipeline
through ``inference_model``), float16, through :class:`DAugFolder` (atomic files). The manifest records the source
folder, the segmentor (config, checkpoint and its SHA-256), the class shares of the new labels and their pixel
agreement with the source's (argmax), both over the labelled pixels, and the labelled share; it is written
incomplete first and complete last, so an interrupted run is resumed (samples already written are kept) and a run
with another segmentor or source is refused.

Example (the real-only student of a DAKD study relabelling its teacher's tiles)::

    python tools/dataset_tools/relabel_daug.py RUN/config.py RUN/best_mIoU_iter_1000.pth \
        --daug work_dirs/study/teacher/daug_64px_20steps --out-dir work_dirs/study/relabel/saross_tiny_seed0
    python tools/dataset_tools/relabel_daug.py RUN/config.py RUN/best_mIoU_iter_1000.pth --labels source-agreed \
        --daug work_dirs/study/teacher/daug_64px_20steps --out-dir work_dirs/study/agreed/saross_tiny_seed0
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import numpy as np  # noqa: E402

SETTING_KEYS = ('source', 'source_daug', 'segmentor_config', 'classes', 'num_classes', 'name_prefix', 'labels')
LABELS = ('segmentor', 'source-agreed')


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config of the segmentor that labels the tiles (its test pipeline is used)')
    p.add_argument('checkpoint', help='its checkpoint')
    p.add_argument('--daug', required=True, help='the D_aug folder whose images are relabelled (read only)')
    p.add_argument('--out-dir', required=True, help='the D_aug folder to write (resumed when its settings match)')
    p.add_argument('--labels', choices=LABELS, default='segmentor',
                   help="'segmentor': the segmentor's logits everywhere; 'source-agreed': the source's logits where "
                   "the segmentor's argmax agrees with the source's, no label elsewhere (a masked D_aug)")
    p.add_argument('--device', default='cpu', help="torch device of the segmentor ('cpu', 'cuda', 'cuda:1', ...)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override entries of the config')
    return p.parse_args(argv)


def relabel(args: argparse.Namespace) -> dict:
    import cv2

    from projects.sar_oilspill.apis import init_segmentor, predict_image
    from projects.sar_oilspill.datasets.daug import DAugFolder
    from projects.sar_oilspill.engine.jointnet_generation_loop import file_sha256
    from projects.sar_oilspill.utils.checkpoint_compat import check_num_classes

    src, dst = DAugFolder(args.daug), DAugFolder(args.out_dir)
    if osp.abspath(src.root) == osp.abspath(dst.root):
        raise ValueError(f'--out-dir {args.out_dir!r} is the source D_aug itself; write the relabelled copy elsewhere')
    manifest = src.read_manifest()
    names = src.sample_names(manifest)
    classes, k = list(manifest['classes']), int(manifest['num_classes'])
    if args.cfg_options:
        from mmengine.config import Config
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
    else:
        cfg = args.config
    model = init_segmentor(cfg, args.checkpoint, device=args.device)
    check_num_classes(model, classes, f'D_aug {args.daug}')
    meta_classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if meta_classes is not None and list(meta_classes) != classes:
        raise ValueError(f'checkpoint {args.checkpoint}: trained on classes {list(meta_classes)}, D_aug {args.daug} '
                         f'holds {classes}')
    settings = dict(source='relabelled', source_daug=osp.abspath(src.root), segmentor_config=osp.abspath(args.config),
                    checkpoint=osp.abspath(args.checkpoint), checkpoint_sha256=file_sha256(args.checkpoint),
                    classes=classes, num_classes=k, name_prefix=manifest.get('name_prefix', 's'))
    agreed = args.labels == 'source-agreed'
    src_masked = src.has_label_mask(manifest)
    if agreed:  # only when set: folders relabelled before this option resume
        settings.update(labels=args.labels, label_mask=True)
    dst.check_settings(settings, SETTING_KEYS)
    dst.write_manifest(dict(settings, num_samples=len(names), complete=False))
    counts = np.zeros(k, np.float64)
    agree = total = labelled = 0
    written = 0
    for name in names:
        if not dst.has_sample(name):
            image = src.read_image(name)
            logits = predict_image(model, cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), logits=True)['logits']
            if logits.shape != (k, *image.shape):
                raise RuntimeError(f'{args.config}: logits of shape {logits.shape} for the {image.shape} tile {name}, '
                                   f'expected ({k}, {image.shape[0]}, {image.shape[1]})')
            if agreed:
                source = src.read_logits(name, k)
                # the student's view of a float16 file: argmax of the stored values on both sides
                valid = logits.astype(np.float16).astype(np.float32).argmax(0) == source.astype(np.float32).argmax(0)
                if src_masked:
                    valid &= src.read_valid(name, image.shape)
                dst.write_sample(name, image, source, valid)
            else:
                dst.write_sample(name, image, logits)
            written += 1
        new = dst.read_label(name)  # as stored (float16), what a student reads
        old = src.read_label(name)
        mask = dst.read_valid(name, new.shape) if agreed else np.ones(new.shape, bool)
        counts += np.bincount(new[mask].ravel(), minlength=k)[:k]
        agree += int((new == old)[mask].sum())
        total += new.size
        labelled += int(mask.sum())
    if labelled == 0:
        raise ValueError(f'--labels {args.labels}: the segmentor agrees with {args.daug} on no pixel; the copy would '
                         'carry no label')
    stats = dict(label_shares={c: float(counts[i] / labelled) for i, c in enumerate(classes)},
                 source_label_agreement=agree / labelled, labelled_share=labelled / total)
    dst.write_manifest(dict(settings, num_samples=len(names), complete=True, samples=[dict(name=n) for n in names],
                            source_manifest=manifest, **stats))
    return dict(stats, num_samples=len(names), out_dir=dst.root, written=written, kept=len(names) - written)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        res = relabel(args)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    shares = ', '.join(f'{c} {100 * v:.2f} %' for c, v in res['label_shares'].items())
    print(f'{res["num_samples"]} tiles relabelled -> {res["out_dir"]} ({res["written"]} written, {res["kept"]} kept '
          f'from an earlier run); new labels: {shares} of the labelled pixels ({100 * res["labelled_share"]:.2f} % '
          f'labelled); pixel agreement with the source labels {100 * res["source_label_agreement"]:.2f} %')
    return 0


if __name__ == '__main__':
    sys.exit(main())
