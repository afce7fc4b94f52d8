"""Label-image consistency of generated samples.

A segmenter trained on real data segments the generated tiles, and its prediction is scored against the argmax of the
generated logits (:func:`label_image_consistency`). High mIoU means the generated labels describe what the generated
image shows.
"""
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from .oilspill_metric import confusion_to_metrics

def label_image_consistency(segmentor_predict_fn: Callable[[np.ndarray], np.ndarray],
                            pairs: Iterable[Tuple[np.ndarray, np.ndarray]], num_classes: int,
                            class_names: Optional[Sequence[str]] = None) -> Dict:
    """Score a segmenter's prediction on generated images against the generated labels.

    For each (image, logits) pair, ``segmentor_predict_fn(image)`` gives an (H, W) class map; the reference is
    ``argmax`` over the K generated logits (or the label map itself when an (H, W) integer map is given).
    Pixel areas are accumulated over all pairs and turned into per-class IoU with the project's metric code
    (:func:`confusion_to_metrics`); classes absent from both prediction and reference (IoU NaN) are left out
    of the mean, as mmseg does.

    Args:
        segmentor_predict_fn: image -> (H, W) integer prediction.
        pairs: Iterable of (image, logits (K, H, W) or label (H, W)).
        num_classes: K.
        class_names: Names for the per-class entries (default ``'0'``, ``'1'``, ...).

    Returns:
        ``dict(mIoU, mF1, aAcc, IoU={name: value}, F1={name: value}, num_images, num_pixels, pred_share={name:
        value}, label_share={name: value})``, values in [0, 1] (not %); NaN for classes that never occur; the shares
        are of all pixels, predicted by the segmenter and in the generated labels.
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
        if label.size and (label.min() < 0 or label.max() >= num_classes):
            raise ValueError(f'label_image_consistency: label values outside 0..{num_classes - 1}')
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
