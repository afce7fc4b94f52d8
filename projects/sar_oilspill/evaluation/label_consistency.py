"""Label-image consistency of generated samples.

A segmenter trained on real data segments the generated tiles, and its prediction is scored against the argmax of the
generated logits (:func:`label_image_consistency`). High mIoU means the generated labels describe what the generated
image shows.
"""
import math
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from .oilspill_metric import confusion_to_metrics

def label_image_consistency(segmentor_predict_fn: Callable[[np.ndarray], np.ndarray],
                            pairs: Iterable[Tuple[np.ndarray, np.ndarray]], num_classes: int,
                            class_names: Optional[Sequence[str]] = None, ignore_index: int = 255) -> Dict:
    """Score a segmenter's prediction on generated images against the generated labels.

    For each (image, logits) pair, ``segmentor_predict_fn(image)`` gives an (H, W) class map; the reference is
    ``argmax`` over the K generated logits (or the label map itself when an (H, W) integer map is given; its pixels
    equal to ``ignore_index``, e.g. those a masked D_aug leaves unlabelled, are left out of every count).
    Pixel areas are accumulated over all pairs and turned into per-class IoU with the project's metric code
    (:func:`confusion_to_metrics`); classes absent from both prediction and reference (IoU NaN) are left out
    of the mean, as mmseg does.

    Args:
        segmentor_predict_fn: image -> (H, W) integer prediction.
        pairs: Iterable of (image, logits (K, H, W) or label (H, W)).
        num_classes: K.
        class_names: Names for the per-class entries (default ``'0'``, ``'1'``, ...).
        ignore_index: Label value of unlabelled pixels in an (H, W) label map. Defaults to 255.

    Returns:
        ``dict(mIoU, mF1, aAcc, IoU={name: value}, F1={name: value}, num_images, num_pixels, pred_share={name:
        value}, label_share={name: value})``, values in [0, 1] (not %); NaN for classes that never occur; the shares
        are of all counted pixels, predicted by the segmenter and in the generated labels.
    """
    names = [str(k) for k in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise ValueError(f'label_image_consistency: {len(names)} class names for {num_classes} classes')
    areas = np.zeros((4, num_classes), np.float64)  # intersect, union, pred_area, label_area
    n = 0
    for image, target in pairs:
        target = np.asarray(target)
        if target.ndim == 3:
            if target.shape[0] != num_classes:
                raise ValueError(f'label_image_consistency: logits of shape {target.shape}, expected '
                                 f'({num_classes}, H, W)')
            label = target.astype(np.float32).argmax(axis=0)
        elif target.ndim == 2:
            label = target.astype(np.int64)
        else:
            raise ValueError(f'label_image_consistency: expected (K, H, W) logits or an (H, W) label, got '
                             f'{target.shape}')
        pred = np.asarray(segmentor_predict_fn(image)).astype(np.int64)
        if pred.shape != label.shape:
            raise ValueError(f'label_image_consistency: prediction {pred.shape} and label {label.shape} '
                             f'differ (image {np.shape(image)})')
        if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
            bad = np.unique(pred)[:10].tolist()
            raise ValueError(f'label_image_consistency: predicted classes {bad} are not all in '
                             f'0..{num_classes - 1}')
        keep = label != ignore_index
        label, pred = label[keep], pred[keep]
        if label.size and (label.min() < 0 or label.max() >= num_classes):
            raise ValueError(f'label_image_consistency: label values outside 0..{num_classes - 1} and '
                             f'{ignore_index} (unlabelled)')
        conf = np.bincount(label.ravel() * num_classes + pred.ravel(), minlength=num_classes ** 2)
        conf = conf.reshape(num_classes, num_classes).astype(np.float64)  # rows: label, cols: prediction
        tp = np.diag(conf)
        label_area, pred_area = conf.sum(axis=1), conf.sum(axis=0)
        areas += np.stack([tp, label_area + pred_area - tp, pred_area, label_area])
        n += 1
    if n == 0:
        raise ValueError('label_image_consistency: no pairs given')
    m = confusion_to_metrics(*areas)

    def _mean(v: np.ndarray) -> float:
        return float(np.nanmean(v)) if not np.all(np.isnan(v)) else float('nan')

    return dict(mIoU=_mean(m['IoU']), mF1=_mean(m['F1']), aAcc=float(m['aAcc']),
                IoU={k: float(v) for k, v in zip(names, m['IoU'])},
                F1={k: float(v) for k, v in zip(names, m['F1'])},
                num_images=n, num_pixels=int(areas[3].sum()),
                pred_share={k: float(v) for k, v in zip(names, areas[2] / max(areas[2].sum(), 1))},
                label_share={k: float(v) for k, v in zip(names, areas[3] / max(areas[3].sum(), 1))})


def soft_label_confidence(logit_maps: Iterable[np.ndarray], temperature: float = 1.0, bin_width: float = 0.01,
                          max_margin: float = 100.0) -> Dict:
    """How hard a set of soft labels is: the top-1 margin ``z_(1) - z_(2)`` of each pixel's logits and the entropy
    of ``softmax(z / temperature)`` (the distribution a KD loss at that temperature distils).

    Two label sets can agree on the argmax and still teach differently: logits with margins of 7 are one-hot at
    ``T = 2`` (probability 0.97), margins of 1 leave the student room near class boundaries. Margins are binned
    (``bin_width`` logit units; those above ``max_margin`` fall in the last bin), so quantiles are exact to one bin.

    Args:
        logit_maps: Iterable of ``(K, H, W)`` logits (K >= 2).
        temperature: Softmax temperature of the entropy and of the mean top-1 probability.

    Returns:
        ``dict(num_pixels, temperature, margin_p10, margin_p50, margin_p90, share_margin_below_1, mean_entropy,
        mean_top1_prob)``; entropy in nats.
    """
    if not temperature > 0:
        raise ValueError(f'soft_label_confidence: temperature must be > 0, got {temperature}')
    num_bins = int(math.ceil(max_margin / bin_width)) + 1
    hist = np.zeros(num_bins, np.int64)
    n = 0
    entropy = top1 = 0.0
    for logits in logit_maps:
        z = np.asarray(logits, np.float64)
        if z.ndim != 3 or z.shape[0] < 2:
            raise ValueError(f'soft_label_confidence: expected (K, H, W) logits with K >= 2, got {z.shape}')
        if not np.isfinite(z).all():
            raise ValueError('soft_label_confidence: the logits hold NaN or Inf')
        z = z.reshape(z.shape[0], -1)
        top2 = np.sort(z, axis=0)[-2:]
        margin = top2[1] - top2[0]
        hist += np.bincount(np.minimum(np.floor(margin / bin_width), num_bins - 1).astype(np.int64),
                            minlength=num_bins)
        zt = z / temperature
        zt = zt - zt.max(0, keepdims=True)
        log_p = zt - np.log(np.exp(zt).sum(0, keepdims=True))
        p = np.exp(log_p)
        entropy += float(-(p * log_p).sum())
        top1 += float(p.max(0).sum())
        n += z.shape[1]
    if n == 0:
        raise ValueError('soft_label_confidence: no logits given')
    cum = np.cumsum(hist)

    def quantile(q: float) -> float:  # lower edge of the bin holding the q-quantile, plus half a bin
        return float(np.searchsorted(cum, q * n) * bin_width + bin_width / 2)

    below_1 = int(hist[:int(round(1.0 / bin_width))].sum())
    return dict(num_pixels=n, temperature=float(temperature), margin_p10=quantile(0.1), margin_p50=quantile(0.5),
                margin_p90=quantile(0.9), share_margin_below_1=below_1 / n, mean_entropy=entropy / n,
                mean_top1_prob=top1 / n)
