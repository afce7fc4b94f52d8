"""Why does a trained segmentor miss a class? Per-class logit margins and dead decoder units on labelled images.

For each class: its pixel share in the labels and in the prediction, IoU, the ROC AUC of its logit margin
(``z_c - max_{k != c} z_k``) against the labels, the best IoU a threshold on that margin would give, and the margin's
maximum and median on the class's own pixels. For each activation (ReLU, LeakyReLU, ...) of the decode head, in the
order of the forward pass: the share of pixels at which every channel is <= 0, overall and per class. Then plain
findings, e.g. "class 'oil_spill' is never predicted ... AUC 0.962 ... dead units: the last activation ... is <= 0
at every channel on 82 % of the 'oil_spill' pixels". See README, "When things go wrong".

Examples:
    python tools/analysis/diagnose_segmentor.py configs/saross/sos_alos.py work_dirs/sos_alos/iter_80000.pth
    python tools/analysis/diagnose_segmentor.py CONFIG CKPT --split test --max-images 50 --out diag.json \
        --cfg-options test_dataloader.dataset.data_root=data/sos

Exit status: 0 on success (findings or not), 2 on a usage / input error (message on stderr).
"""
import argparse
import contextlib
import copy
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import numpy as np  # noqa: E402

from projects.sar_oilspill.utils.atomic import json_safe, write_json_atomic  # noqa: E402

SPLITS = ('val', 'test', 'train')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Per-class logit margins and dead decoder units of a segmentor',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('config', help='segmentor config')
    p.add_argument('checkpoint', help='its checkpoint')
    p.add_argument('--split', choices=SPLITS, default='val',
                   help="whose dataloader gives the labelled images (train: its dataset with the config's "
                        'val/test pipeline, so no random augmentation)')
    p.add_argument('--max-images', type=int, help='use only the first N images')
    p.add_argument('--num-workers', type=int, default=0, help='data-loading processes')
    p.add_argument('--margin-range', type=float, default=40.0, help='margin histogram range [-R, R] (logits)')
    p.add_argument('--bins-per-unit', type=int, default=100, help='margin histogram bins per logit unit')
    p.add_argument('--out', help='write the results as JSON here')
    p.add_argument('--device', default='cpu', help='torch device')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, e.g. val_dataloader.dataset.data_root=data/sos')
    a = p.parse_args(argv)
    if a.max_images is not None and a.max_images < 1:
        p.error('--max-images must be >= 1')
    if a.num_workers < 0:
        p.error('--num-workers must be >= 0')
    return a


def loader_cfg(cfg, split: str, num_workers: int) -> Dict:
    """The dataloader config of ``split`` (``train``: the real training set, test pipeline, no shuffling)."""
    from projects.sar_oilspill.utils.cli import real_train_dataset_cfg
    if split == 'train':
        ds = real_train_dataset_cfg(cfg)
        pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.get('pipeline')
        ds['pipeline'] = copy.deepcopy(pipeline)
        base = copy.deepcopy(cfg.test_dataloader)
        base['dataset'] = ds
    else:
        key = f'{split}_dataloader'
        if not cfg.get(key):
            raise ValueError(f'{cfg.filename}: no {key}')
        base = copy.deepcopy(cfg[key])
    base.update(batch_size=1, num_workers=num_workers, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=False))
    base.pop('batch_sampler', None)
    return base


def run(args: argparse.Namespace) -> Dict:
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import projects.sar_oilspill  # noqa: F401  (registers the plugin)
    from projects.sar_oilspill.apis import init_segmentor
    from projects.sar_oilspill.evaluation.segmentor_diagnostics import (ActivationMonitor, ClassMarginStats,
                                                                       verdicts)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config!r} does not exist')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    t0 = time.time()
    model = init_segmentor(copy.deepcopy(cfg), args.checkpoint, device=args.device)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader = Runner.build_dataloader(loader_cfg(cfg, args.split, args.num_workers))
    classes = list(loader.dataset.metainfo['classes'])
    head = model.decode_head
    k = int(head.num_classes)
    if k != len(classes):
        raise ValueError(f'{args.config}: the decode head predicts {k} classes, the {args.split} set has '
                         f'{len(classes)} ({classes})')
    ignore_index = int(getattr(head, 'ignore_index', 255))
    stats = ClassMarginStats(k, classes, ignore_index=ignore_index, margin_range=args.margin_range,
                             bins_per_unit=args.bins_per_unit)
    mode = (model.test_cfg or {}).get('mode', 'whole')
    monitor = ActivationMonitor(head, k, classes, ignore_index=ignore_index) if mode == 'whole' else None
    n = 0
    with torch.no_grad(), monitor if monitor is not None else contextlib.nullcontext():
        for batch in loader:
            if args.max_images is not None and n >= args.max_images:
                break
            data = model.data_preprocessor(batch, False)
            samples = model.predict(data['inputs'], data['data_samples'])
            for s in samples:
                if 'gt_sem_seg' not in s:
                    raise ValueError(f'{s.metainfo.get("img_path")}: no labels (the {args.split} pipeline '
                                     'must load annotations)')
                stats.update(s.seg_logits.data, s.gt_sem_seg.data)
            if monitor is not None:
                monitor.update([s.gt_sem_seg.data for s in samples], [s.metainfo for s in samples],
                               data['inputs'].shape[-2:])
            n += len(samples)
    if n == 0:
        raise ValueError(f'{args.config}: the {args.split} set is empty')
    margins = stats.results()
    acts = monitor.results() if monitor is not None else []
    bias = getattr(getattr(head, 'conv_seg', None), 'bias', None)
    return dict(config=args.config, checkpoint=args.checkpoint, split=args.split, num_images=n,
                inference_mode=mode, classes=classes, margins=margins, activations=acts,
                activations_skipped=None if monitor is not None else f'test_cfg mode {mode!r} (only whole)',
                classifier_bias=None if bias is None else [float(v) for v in bias.detach().cpu()],
                findings=verdicts(margins, acts), wall_s=round(time.time() - t0, 1))


def format_report(res: Dict) -> str:
    from prettytable import PrettyTable

    def pct(v):
        return '-' if v is None or not np.isfinite(v) else f'{100 * v:.2f}'

    t = PrettyTable(['class', 'labelled %', 'predicted %', 'IoU', 'AUC', 'best-threshold IoU (at)',
                     'margin on class: max / median'])
    t.align = 'r'
    for name, r in res['margins']['classes'].items():
        t.add_row([name, pct(r['label_share']), pct(r['pred_share']), pct(r['iou']),
                   '-' if not np.isfinite(r['auc']) else f'{r["auc"]:.3f}',
                   f'{pct(r["best_threshold_iou"])} ({r["best_threshold"]:+.2f})',
                   f'{r["margin_max_on_class"]:+.3f} / {r["margin_median_on_class"]:+.3f}'])
    out = [f'{res["config"]} + {res["checkpoint"]}: {res["num_images"]} {res["split"]} images, '
           f'{res["margins"]["num_pixels"]} labelled pixels', t.get_string()]
    if res['activations']:
        a = PrettyTable(['activation (forward order)', 'channels', 'h x w', 'all <= 0, % of pixels',
                         *[f'% of {c}' for c in res['classes']]])
        a.align = 'r'
        for r in res['activations']:
            a.add_row([r['name'], r['channels'], 'x'.join(map(str, r['resolution'])), pct(r['inactive_share']),
                       *[pct(r['inactive_share_by_class'][c]) for c in res['classes']]])
        out.append(a.get_string())
    else:
        out.append(f'decode-head activations not watched: {res["activations_skipped"] or "none found"}')
    if res['classifier_bias'] is not None:
        out.append('classifier bias: ' + ', '.join(f'{c} {b:+.4f}' for c, b in zip(res['classes'],
                                                                              res['classifier_bias'])))
    out.append('findings:' if res['findings'] else 'findings: none (every labelled class is predicted, and no '
               'threshold on its margin would raise its IoU by more than 10 points)')
    out.extend(f'  {line}' for line in res['findings'])
    return '\n'.join(out)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        res = run(args)
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(format_report(res))
    if args.out:
        write_json_atomic(json_safe(res), args.out)
        print(f'results written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
