"""Segmentor diagnostics: per-class logit margins (AUC, best-threshold IoU) and dead decoder units, checked against
hand computations, scipy's Mann-Whitney U and a brute-force threshold sweep; the tool end to end."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu
from torch import nn

from projects.sar_oilspill.evaluation.segmentor_diagnostics import (ActivationMonitor, ClassMarginStats,
                                                                   class_margins, verdicts)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
_spec = importlib.util.spec_from_file_location('diagnose_segmentor_tool',
                                               osp.join(ROOT, 'tools', 'analysis', 'diagnose_segmentor.py'))
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)


def test_class_margins_by_hand():
    # three pixels, three classes: (1, 2, 0), (3, 0, 3) [a tie at the top], (5, 1, 2)
    z = torch.tensor([[1., 3., 5.], [2., 0., 1.], [0., 3., 2.]])
    m = class_margins(z)
    expected = torch.tensor([[1 - 2, 0., 5 - 2], [2 - 1, 0 - 3, 1 - 5], [0 - 2, 0., 2 - 5]])
    assert torch.equal(m, expected)
    with pytest.raises(ValueError, match='K >= 2'):
        class_margins(torch.zeros(1, 4))


def _on_grid(x, bins_per_unit):
    """Values at bin centres, so histogram results are exact."""
    return (np.floor(x * bins_per_unit) + 0.5) / bins_per_unit


def test_margin_stats_against_independent_references():
    rng = np.random.default_rng(0)
    bpu = 20
    h, w = 24, 30
    labels, logits = [], []
    for _ in range(3):
        lab = (rng.random((h, w)) < 0.3).astype(np.int64)
        lab[0, :5] = 255  # ignored
        margin = _on_grid(rng.normal(0, 2, (h, w)) + 1.5 * lab - 0.5, bpu)  # oil minus background
        z = np.stack([np.zeros((h, w)), margin])
        labels.append(lab)
        logits.append(z)
    st = ClassMarginStats(2, ['background', 'oil'], margin_range=10, bins_per_unit=bpu)
    for z, lab in zip(logits, labels):
        st.update(torch.from_numpy(z).float(), torch.from_numpy(lab)[None])
    res = st.results()
    valid = np.concatenate([(lab != 255).ravel() for lab in labels])
    lab = np.concatenate([x.ravel() for x in labels])[valid]
    m = np.concatenate([z[1].ravel() for z in logits])[valid].astype(np.float32).astype(np.float64)
    assert res['num_pixels'] == valid.sum() == 3 * (h * w - 5) and res['num_images'] == 3
    oil = res['classes']['oil']
    # shares and IoU from the argmax (ties at 0 go to background, the first class, as torch.argmax)
    pred = (m > 0).astype(int)
    assert oil['label_share'] == pytest.approx(lab.mean())
    assert oil['pred_share'] == pytest.approx(pred.mean())
    inter, union = ((pred == 1) & (lab == 1)).sum(), ((pred == 1) | (lab == 1)).sum()
    assert oil['iou'] == pytest.approx(inter / union)
    # AUC: Mann-Whitney U / (n_pos n_neg), ties counted a half, as scipy does
    u = mannwhitneyu(m[lab == 1], m[lab == 0]).statistic
    assert oil['auc'] == pytest.approx(u / ((lab == 1).sum() * (lab == 0).sum()), abs=1e-12)
    bg = res['classes']['background']
    assert bg['auc'] == pytest.approx(oil['auc'], abs=1e-12)  # two classes: the margins are negatives
    # best threshold: brute force over every bin edge ("oil iff margin >= t"); ties -> the edge nearest 0
    edges = np.arange(-10 * bpu, 10 * bpu) / bpu
    ious = np.array([((m >= t) & (lab == 1)).sum() / ((m >= t) | (lab == 1)).sum() for t in edges])
    assert oil['best_threshold_iou'] == pytest.approx(ious.max(), abs=1e-12)
    tied = edges[np.isclose(ious, ious.max(), rtol=0, atol=1e-12)]
    assert oil['best_threshold'] == pytest.approx(tied[np.argmin(np.abs(tied))])
    assert oil['margin_max_on_class'] == pytest.approx(m[lab == 1].max(), abs=1e-6)
    # median on the class's pixels: the bin holding the (lower) median
    med = np.sort(m[lab == 1])[((lab == 1).sum() - 1) // 2]
    assert oil['margin_median_on_class'] == pytest.approx(med, abs=1e-6)


def test_margin_stats_three_classes_and_clipping():
    # class 2 is never the argmax; margins beyond the range fall into the end bins
    z = torch.tensor([[[9.0, 0.0, 100.0]], [[0.0, 9.0, 0.0]], [[8.0, 8.5, -100.0]]])  # (3, 1, 3)
    lab = torch.tensor([[2, 2, 0]])
    st = ClassMarginStats(3, margin_range=5, bins_per_unit=10)
    st.update(z, lab)
    r = st.results()['classes']
    assert r['2']['pred_share'] == 0 and r['2']['label_share'] == pytest.approx(2 / 3)
    assert r['2']['margin_max_on_class'] == pytest.approx(-0.5)  # pixel 1: 8.5 - 9
    assert r['2']['auc'] == 1.0  # both class-2 pixels (-1, -0.5) above the class-0 pixel (-200 -> clipped)
    assert r['2']['best_threshold_iou'] == 1.0 and r['2']['best_threshold'] == pytest.approx(-1.0)
    assert r['1']['label_share'] == 0 and np.isnan(r['1']['auc']) and r['1']['iou'] == 0.0
    found = verdicts(st.results(), [])
    assert len(found) == 2 and "class '0' is mis-calibrated" in found[0] and 'IoU 50.00' in found[0]
    assert "class '2' is (almost) never predicted" in found[1] and 'would give IoU 100.00' in found[1]


def test_margin_stats_rejects_bad_input():
    st = ClassMarginStats(2)
    with pytest.raises(ValueError, match=r'expected logits \(2, H, W\)'):
        st.update(torch.zeros(3, 4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match='label values \\[7\\]'):
        st.update(torch.zeros(2, 2, 2), torch.tensor([[0, 7], [255, 1]]))
    with pytest.raises(ValueError, match='NaN or Inf'):
        st.update(torch.full((2, 2, 2), float('nan')), torch.zeros(2, 2))
    with pytest.raises(ValueError, match='num_classes'):
        ClassMarginStats(1)


class _Head(nn.Module):
    """Input (N, 1, H, W) -> avg-pool 2 -> 1x1 conv to 2 equal channels -> ReLU (called twice) -> LeakyReLU."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.zero_()
        self.relu = nn.ReLU()
        self.leaky = nn.LeakyReLU(0.1)

    def forward(self, x):
        y = self.relu(self.conv(nn.functional.avg_pool2d(x, 2)))
        y = self.relu(y - 1.0)  # second call of the same module: inactive where the pooled input <= 1
        return self.leaky(nn.functional.interpolate(x, scale_factor=1.0) - 2.0)


def test_activation_monitor_maps_back_like_mmseg():
    # one sample: input 8x8 of which the top 6 rows are the image (bottom 2 rows padding); original size 12x16
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, :4, :4] = 3.0  # pooled: 3 on the top-left 2x2 feature cells
    x[0, 0, 4:, 4:] = -1.0
    head = _Head()
    label = torch.zeros(12, 16, dtype=torch.long)
    label[:, 8:] = 1
    label[0, 0] = 255
    with ActivationMonitor(head, 2, ['a', 'b']) as mon:
        head(x)
        mon.update([label[None]], [dict(img_shape=(6, 8), ori_shape=(12, 16))], (8, 8))
    res = {r['name']: r for r in mon.results()}
    assert list(res) == ['relu', 'relu#1', 'leaky']
    assert res['relu']['channels'] == 2 and res['relu']['resolution'] == [4, 4]
    assert res['leaky']['resolution'] == [8, 8]
    # independent mapping: original pixel (r, c) -> image pixel (r // 2, c // 2) -> feature cell (r // 4, c // 4)
    xi = x[0, 0].numpy()
    pooled = xi.reshape(4, 2, 4, 2).mean((1, 3))
    lab = label.numpy()
    valid = lab != 255
    rr, cc = np.meshgrid(np.arange(12), np.arange(16), indexing='ij')
    for name, inactive_feat, step in (('relu', pooled <= 0, 4), ('relu#1', pooled - 1 <= 0, 4),
                                      ('leaky', xi - 2 <= 0, 2)):
        mask = inactive_feat[rr // step, cc // step]
        assert res[name]['inactive_share'] == pytest.approx(mask[valid].mean()), name
        for k, c in enumerate('ab'):
            sel = valid & (lab == k)
            assert res[name]['inactive_share_by_class'][c] == pytest.approx(mask[sel].mean()), (name, c)
    assert 0 < res['relu']['inactive_share'] < 1
    # the hooks are gone after the with-block
    head(x)
    assert mon._batch == []


def test_activation_monitor_refuses_unmatched_batches():
    head = _Head()
    with ActivationMonitor(head, 2) as mon:
        head(torch.zeros(2, 1, 4, 4))
        with pytest.raises(ValueError, match='batch of 2, 1 labels'):
            mon.update([torch.zeros(4, 4)], [dict(img_shape=(4, 4))], (4, 4))


def test_verdicts_flag_dead_units_only_when_the_class_is_missed():
    margins = dict(classes=dict(
        sea=dict(label_share=0.8, pred_share=1.0, iou=0.8, auc=0.96, best_threshold=0.07, best_threshold_iou=0.85,
                 margin_max_on_class=7.0, margin_median_on_class=5.0),
        oil=dict(label_share=0.2, pred_share=0.0, iou=0.0, auc=0.96, best_threshold=-0.07, best_threshold_iou=0.68,
                 margin_max_on_class=-0.066, margin_median_on_class=-0.065)))
    acts = [dict(name='up.0', channels=16, inactive_share=0.0, inactive_share_by_class=dict(sea=0.0, oil=0.0)),
            dict(name='up.1', channels=16, inactive_share=0.19, inactive_share_by_class=dict(sea=0.05, oil=0.87))]
    found = verdicts(margins, acts)
    assert len(found) == 2
    assert "class 'oil' is (almost) never predicted" in found[0] and 'AUC 0.960' in found[0]
    assert 'IoU 68.00' in found[0] and 'max -0.066' in found[0]
    assert 'up.1, 16 channels' in found[1] and '87.0 %' in found[1]
    healthy = dict(classes=dict(oil=dict(margins['classes']['oil'], pred_share=0.2, iou=0.65)))
    assert verdicts(healthy, acts) == []


def test_tool_end_to_end(synthetic_osd, tiny_osd_checkpoint, tmp_path, capsys):
    # the fixture checkpoint's land bias is -30: land is never predicted, on the labelled land pixels too
    out = str(tmp_path / 'diag.json')
    cfg = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
    code = _tool.main([cfg, tiny_osd_checkpoint, '--split', 'test', '--max-images', '3', '--out', out,
                       '--cfg-options', f'test_dataloader.dataset.data_root={synthetic_osd}'])
    assert code == 0
    text = capsys.readouterr().out
    res = json.load(open(out))
    assert res['num_images'] == 3 and res['margins']['num_pixels'] == 3 * 64 * 96
    land = res['margins']['classes']['land']
    assert land['pred_share'] == 0 and land['label_share'] > 0
    assert land['margin_max_on_class'] < -20
    assert sum(c['label_share'] for c in res['margins']['classes'].values()) == pytest.approx(1.0)
    assert sum(c['pred_share'] for c in res['margins']['classes'].values()) == pytest.approx(1.0)
    assert res['activations'] and all(0 <= a['inactive_share'] <= 1 for a in res['activations'])
    assert any("class 'land' is (almost) never predicted" in f for f in res['findings'])
    assert res['classifier_bias'][4] == -30.0
    assert 'findings:' in text and 'land' in text


def test_tool_errors(tiny_osd_checkpoint, tmp_path, capsys):
    cfg = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
    assert _tool.main([cfg, str(tmp_path / 'missing.pth')]) == 2
    assert 'missing.pth' in capsys.readouterr().err
    assert _tool.main([str(tmp_path / 'no.py'), tiny_osd_checkpoint]) == 2
    assert 'no.py' in capsys.readouterr().err


def test_tool_train_split_uses_the_test_pipeline(synthetic_osd, tiny_osd_checkpoint, tmp_path):
    # --split train: the training images with the config's test pipeline (no random crop), in file order
    out = str(tmp_path / 'train.json')
    cfg = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
    assert _tool.main([cfg, tiny_osd_checkpoint, '--split', 'train', '--max-images', '2', '--out', out,
                       '--cfg-options', f'train_dataloader.dataset.data_root={synthetic_osd}']) == 0
    res = json.load(open(out))
    assert res['split'] == 'train' and res['num_images'] == 2
    assert res['margins']['num_pixels'] == 2 * 64 * 96  # whole 64x96 scenes, not 128x128 training crops
