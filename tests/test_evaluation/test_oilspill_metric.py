import numpy as np
import pytest
import torch

from projects.sar_oilspill.evaluation import OilSpillMetric


def _sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]), gt_sem_seg=dict(data=torch.tensor(gt)[None]))


def test_against_hand_computation():
    # 2 classes, 6 labelled pixels + 1 ignored.
    gt = [[0, 0, 1, 1, 1, 255, 0]]
    pred = [[0, 1, 1, 1, 0, 1, 0]]
    metric = OilSpillMetric()
    metric.dataset_meta = dict(classes=('background', 'oil_spill'))
    metric.process({}, [_sample(pred, gt)])
    out = metric.compute_metrics(metric.results)
    # class 0: TP=2 (pos 0, 6), pred=3 (0, 4, 6), gt=3 (0, 1, 6) -> IoU 2/4, P 2/3, R 2/3, F1 2/3
    # class 1: TP=2 (2, 3), pred=3 (1, 2, 3), gt=3 (2, 3, 4) -> IoU 2/4, P 2/3, R 2/3
    # accuracy 4/6
    assert out['IoU.background'] == pytest.approx(50.0) and out['IoU.oil_spill'] == pytest.approx(50.0)
    assert out['mIoU'] == pytest.approx(50.0)
    assert out['mF1'] == pytest.approx(66.67, abs=0.01)
    assert out['mPrecision'] == pytest.approx(66.67, abs=0.01) and out['mRecall'] == pytest.approx(66.67, abs=0.01)
    assert out['aAcc'] == pytest.approx(66.67, abs=0.01)


def test_unbalanced_case_against_numpy_confusion_matrix():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, (1, 50, 40))
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 3, gt.shape))
    metric = OilSpillMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    metric.process({}, [_sample(pred[0], gt[0])])
    out = metric.compute_metrics(metric.results)
    cm = np.zeros((3, 3))
    np.add.at(cm, (gt.ravel(), pred.ravel()), 1)
    tp = np.diag(cm)
    p, r = tp / cm.sum(0), tp / cm.sum(1)
    f1 = 2 * p * r / (p + r)
    iou = tp / (cm.sum(0) + cm.sum(1) - tp)
    assert out['mIoU'] == pytest.approx(100 * iou.mean(), abs=0.01)
    assert out['mF1'] == pytest.approx(100 * f1.mean(), abs=0.01)
    assert out['aAcc'] == pytest.approx(100 * tp.sum() / cm.sum(), abs=0.01)
    assert out['Recall.c'] == pytest.approx(100 * r[2], abs=0.01)


def test_unknown_gt_value_is_an_error():
    metric = OilSpillMetric()
    metric.dataset_meta = dict(classes=('background', 'oil_spill'))
    with pytest.raises(ValueError, match=r'\[7\]'):
        metric.process({}, [_sample([[0, 1]], [[0, 7]])])
