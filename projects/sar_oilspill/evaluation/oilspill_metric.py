"""The metrics the paper reports (mIoU, F1, precision, recall, accuracy, per-class IoU) in one table."""
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable


def confusion_to_metrics(intersect: np.ndarray, union: np.ndarray, pred_area: np.ndarray, label_area: np.ndarray
                         ) -> Dict[str, np.ndarray]:
    """Per-class IoU, precision, recall, F1 and overall accuracy from accumulated pixel areas.

    Args:
        intersect: (K,) true-positive pixels per class.
        union: (K,) |pred ∪ label| per class.
        pred_area: (K,) predicted pixels per class.
        label_area: (K,) ground-truth pixels per class.

    Returns:
        dict with ``IoU``, ``Precision``, ``Recall``, ``F1`` of shape (K,) (NaN where undefined, e.g. a class that
        is neither predicted nor present) and ``aAcc``, a scalar (correct pixels / labelled pixels).
    """
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = intersect / union
        precision = intersect / pred_area
        recall = intersect / label_area
        f1 = 2 * intersect / (pred_area + label_area)  # = 2PR / (P + R), defined when only one of P, R is
    return dict(IoU=iou, Precision=precision, Recall=recall, F1=f1,
                aAcc=np.asarray(intersect.sum() / max(label_area.sum(), 1)))


@METRICS.register_module()
class OilSpillMetric(IoUMetric):
    """mIoU, mF1, mPrecision, mRecall, aAcc and per-class IoU/F1/precision/recall, printed as one table.

    Class means skip classes that are absent from both prediction and ground truth (NaN), as mmseg does.
    Returned keys (all in %): ``mIoU, mF1, mPrecision, mRecall, aAcc`` and ``IoU.<class>``, ``F1.<class>``,
    ``Precision.<class>``, ``Recall.<class>``. ``tools/test.py`` saves them as JSON in the work dir.

    Unlike mmseg's IoUMetric, a ground-truth value outside ``[0, num_classes)`` that is not ``ignore_index`` is an
    error (IoUMetric drops such pixels silently, which hides a wrong label decoding).

    Args:
        **kwargs: Passed to :class:`mmseg.evaluation.IoUMetric` (``ignore_index``, ``output_dir``, ...).
    """

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        if not self.format_only:
            for sample in data_samples:
                label = sample['gt_sem_seg']['data']
                bad = (label >= num_classes) & (label != self.ignore_index)
                if bool(bad.any()):
                    values = sorted(set(label[bad].unique().tolist()))
                    raise ValueError(f'{sample.get("seg_map_path")}: ground-truth values {values[:10]} are neither '
                                     f'classes 0..{num_classes - 1} nor ignore_index {self.ignore_index}')
        super().process(data_batch, data_samples)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {self.output_dir}')
            return OrderedDict()
        totals = [np.sum([np.asarray(r[i]) for r in results], axis=0).astype(np.float64) for i in range(4)]
        m = confusion_to_metrics(*totals)
        classes = self.dataset_meta['classes']
        out = OrderedDict()
        for key, name in (('IoU', 'mIoU'), ('F1', 'mF1'), ('Precision', 'mPrecision'), ('Recall', 'mRecall')):
            out[name] = round(float(np.nanmean(m[key])) * 100, 2) if not np.all(np.isnan(m[key])) else float('nan')
        out['aAcc'] = round(float(m['aAcc']) * 100, 2)
        table = PrettyTable(['class', 'IoU', 'F1', 'Precision', 'Recall', 'pixels'])
        for k, cls in enumerate(classes):
            row = [cls]
            for key in ('IoU', 'F1', 'Precision', 'Recall'):
                v = round(float(m[key][k]) * 100, 2)
                out[f'{key}.{cls}'] = v
                row.append(v)
            table.add_row(row + [int(totals[3][k])])
        table.add_row(['mean', out['mIoU'], out['mF1'], out['mPrecision'], out['mRecall'], int(totals[3].sum())])
        print_log('per-class results:\n' + table.get_string() + f'\naAcc: {out["aAcc"]}', logger)
        return out
