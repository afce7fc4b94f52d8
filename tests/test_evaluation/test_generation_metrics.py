"""Generation-quality measures of D_aug: FID / IS, speckle statistics, label-image consistency, grid, CLI."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projects.sar_oilspill.datasets.daug import write_daug_manifest, write_daug_sample
from projects.sar_oilspill.datasets.osd import OSDDataset
from projects.sar_oilspill.datasets.synthetic import make_sar_scene
from projects.sar_oilspill.evaluation import generation_metrics
from projects.sar_oilspill.evaluation.fid import (InceptionFeatureExtractor, compute_fid_is, feature_statistics,
                                                  frechet_distance, inception_score)
from projects.sar_oilspill.evaluation.image_sets import (class_shares, list_real_images, load_daug, read_image,
                                                         real_label_maps)
from projects.sar_oilspill.evaluation.label_consistency import label_image_consistency, soft_label_confidence
from projects.sar_oilspill.evaluation.speckle_stats import (equivalent_number_of_looks, histogram_distance,
                                                            speckle_statistics)
from projects.sar_oilspill.visualization.grid import SOS_OVERLAY_PALETTE, save_generation_grid

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
EVAL_TOOL = osp.join(ROOT, 'tools', 'analysis', 'eval_generation.py')
GRID_TOOL = osp.join(ROOT, 'tools', 'analysis', 'make_grid.py')
OSD_CLASSES = list(OSDDataset.METAINFO['classes'])


# ------------------------------------------------------------------------------------------------------------
# FID / IS
# ------------------------------------------------------------------------------------------------------------

def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_identical_and_singular():
    rng = np.random.default_rng(1)
    mu, sigma = feature_statistics(rng.normal(size=(200, 8)))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    # fewer samples than dimensions: singular covariance, ~0 against itself, finite against another set
    mu_s, sigma_s = feature_statistics(rng.normal(size=(4, 8)))
    assert frechet_distance(mu_s, sigma_s, mu_s, sigma_s) == pytest.approx(0.0, abs=1e-4)
    assert np.isfinite(frechet_distance(mu_s, sigma_s, mu, sigma))
    with pytest.raises(ValueError, match='shapes'):
        frechet_distance(mu, sigma, mu[:4], sigma[:4, :4])


def test_frechet_distance_full_covariance_matches_eigen_route():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 1.0
    (m1, s1), (m2, s2) = feature_statistics(a), feature_statistics(b)
    # Tr sqrt(s1 s2) = sum of square roots of the (real, non-negative) eigenvalues of s1 s2
    tr = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)))
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-7)


def test_inception_score_hand_made():
    assert inception_score(np.full((20, 7), 1 / 7), splits=4) == pytest.approx((1.0, 0.0))
    mean, std = inception_score(np.tile(np.eye(5), (3, 1)), splits=3)  # each split: 5 distinct one-hots
    assert mean == pytest.approx(5.0) and std == pytest.approx(0.0, abs=1e-12)
    # two equally likely confident classes -> exp(log 2) = 2
    assert inception_score(np.array([[1, 0, 0], [0, 1, 0]] * 4, float), splits=1)[0] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        inception_score(np.full((3, 2), 0.5), splits=4)
    with pytest.raises(ValueError):
        inception_score(np.full((3, 2), 0.7), splits=1)


class FakeInception(torch.nn.Module):
    """Same call convention as inception-2015-12-05.pt (uint8 NCHW RGB in, resize inside), 10-d features."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('weight', torch.randn(6, 10, generator=torch.Generator().manual_seed(0)))

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        if img.dtype != torch.uint8 or img.shape[1] != 3:
            raise ValueError('expected uint8 NCHW with 3 channels')
        x = F.interpolate(img.to(torch.float32), size=[32, 32], mode='bilinear', align_corners=False)
        x = (x - 128.0) / 128.0
        pooled = F.adaptive_avg_pool2d(x[:, :1], 2).flatten(1)
        feats = torch.cat([x.mean(dim=[2, 3]), x.std(dim=[2, 3]), pooled], 1)
        if return_features:
            return feats
        return torch.softmax(feats @ self.weight.t(), dim=1)


@pytest.fixture(scope='module')
def fake_inception(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('inception') / 'fake-inception.pt')
    torch.jit.script(FakeInception()).save(path)
    return path


def _scenes(seeds, h=64, w=64):
    return [make_sar_scene(s, h, w)[0] for s in seeds]


def test_compute_fid_is_end_to_end(fake_inception):
    real = _scenes(range(16))
    gen = _scenes(range(100, 110)) + [np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
                                       for _ in range(2)]  # mixed sizes: batched by size
    extractor = InceptionFeatureExtractor(fake_inception, device='cpu', batch_size=4)
    out = compute_fid_is(real, gen, extractor, batch_size=4, splits=3)
    assert out['num_real'] == 16 and out['num_gen'] == 12

    # independent computation: the module itself on each image, numpy statistics, eigenvalue route for FID
    model = FakeInception()

    def run(images, **kw):
        with torch.no_grad():
            batches = [torch.from_numpy(np.repeat(im[None, None], 3, 1)) for im in images]
            return np.concatenate([model(x, **kw).double().numpy() for x in batches])

    fr, fg = run(real, return_features=True), run(gen, return_features=True)
    pg = run(gen, no_output_bias=True)
    m1, s1, m2, s2 = fr.mean(0), np.cov(fr, rowvar=False), fg.mean(0), np.cov(fg, rowvar=False)
    tr = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)))
    fid = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert out['fid'] == pytest.approx(fid, rel=1e-4, abs=1e-6)
    scores = []
    for part in np.array_split(pg, 3):
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(part.mean(0))), axis=1))))
    assert out['is_mean'] == pytest.approx(np.mean(scores), rel=1e-5)
    assert out['is_std'] == pytest.approx(np.std(scores), rel=1e-4, abs=1e-8)
    # the same set against itself: FID 0
    assert compute_fid_is(real, real, extractor, splits=2)['fid'] == pytest.approx(0.0, abs=1e-6)
    # RGB input passes too (3 channels kept)
    rgb = [np.stack([im, im // 2, im], axis=2) for im in real[:4]]
    assert extractor(rgb, features=True)['features'].shape == (4, 10)


def test_inception_weights_missing(tmp_path):
    for path in (None, str(tmp_path / 'inception-2015-12-05.pt')):
        with pytest.raises(FileNotFoundError, match='no download|Nothing is downloaded') as e:
            InceptionFeatureExtractor(path)
        assert 'inception-2015-12-05.pt' in str(e.value) and '--inception PATH' in str(e.value)
    bad = tmp_path / 'not-torchscript.pt'
    bad.write_bytes(b'not a model')
    with pytest.raises(ValueError, match='TorchScript'):
        InceptionFeatureExtractor(str(bad))


# ------------------------------------------------------------------------------------------------------------
# Speckle statistics
# ------------------------------------------------------------------------------------------------------------

def test_enl_of_simulated_speckle():
    rng = np.random.default_rng(0)
    single = rng.exponential(1.0, (256, 256))
    assert equivalent_number_of_looks(single, kind='intensity') == pytest.approx(1.0, rel=0.05)
    assert equivalent_number_of_looks(single, window=16, kind='intensity') == pytest.approx(1.0, rel=0.05)
    for looks in (3, 8):
        intensity = rng.gamma(looks, 1.0 / looks, (256, 256))
        assert equivalent_number_of_looks(intensity, kind='intensity') == pytest.approx(looks, rel=0.06)
        # amplitude convention: I = A^2
        assert equivalent_number_of_looks(np.sqrt(intensity)) == pytest.approx(looks, rel=0.06)
        assert equivalent_number_of_looks(np.sqrt(intensity), window=32) == pytest.approx(looks, rel=0.06)
        # keeping only the most homogeneous windows biases pure speckle upwards
        top = equivalent_number_of_looks(intensity, window=16, kind='intensity', homogeneous_fraction=0.25)
        assert top > looks
    assert np.isnan(equivalent_number_of_looks(np.full((8, 8), 7)))
    with pytest.raises(ValueError):
        equivalent_number_of_looks(single, kind='dB')


def test_histogram_distance():
    real = _scenes(range(4))
    same = histogram_distance(real, [im.copy() for im in real])
    assert same['js'] == pytest.approx(0.0, abs=1e-9) and same['w1'] == pytest.approx(0.0, abs=1e-9)
    brighter = [np.clip(im.astype(int) + 20, 0, 255).astype(np.uint8) for im in real]
    d = histogram_distance(real, brighter)
    assert 0 < d['js'] <= 1 and 15 < d['w1'] <= 20
    # a constant shift of every pixel: W1 is exactly the shift
    flat = np.full((10, 10), 100, np.uint8)
    assert histogram_distance(flat, flat + 5)['w1'] == pytest.approx(5.0)
    assert histogram_distance(flat, flat + 5)['js'] == pytest.approx(1.0)


def test_speckle_statistics_summary():
    real, gen = _scenes(range(5)), _scenes(range(50, 53))
    s = speckle_statistics(iter(real), iter(gen))
    assert s['real']['num_images'] == 5 and s['gen']['num_images'] == 3
    pooled = np.concatenate([im.ravel() for im in real]).astype(float)
    assert s['real']['mean'] == pytest.approx(pooled.mean())
    assert s['real']['std'] == pytest.approx(pooled.std())
    assert s['real']['enl_mean'] > 0 and s['distance']['js'] > 0 and s['distance']['w1'] > 0

    # independent computation of the defaults (16 x 16 windows, amplitude, the most homogeneous half)
    def enl_by_hand(im):
        blocks = (im.astype(float) ** 2).reshape(4, 16, 4, 16).transpose(0, 2, 1, 3).reshape(16, 256)
        enl = np.sort(blocks.mean(1) ** 2 / blocks.var(1, ddof=1))[::-1]
        return enl[:8].mean()

    for name, images in (('real', real), ('gen', gen)):
        per_image = [enl_by_hand(im) for im in images]
        assert s[name]['enl_mean'] == pytest.approx(np.mean(per_image), rel=1e-9)
        assert s[name]['enl_median'] == pytest.approx(np.median(per_image), rel=1e-9)
    assert s['distance']['enl_ratio'] == pytest.approx(s['gen']['enl_mean'] / s['real']['enl_mean'])
    p, q = (np.bincount(np.concatenate([im.ravel() for im in ims]), minlength=256).astype(float)
            for ims in (real, gen))
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl2(a, b):
        return np.sum(a[a > 0] * np.log2(a[a > 0] / b[a > 0]))

    assert s['distance']['js'] == pytest.approx(np.sqrt((kl2(p, m) + kl2(q, m)) / 2), rel=1e-9)
    # W1 between two distributions on the unit-spaced grey levels: sum of |CDF_p - CDF_q|
    assert s['distance']['w1'] == pytest.approx(np.abs(np.cumsum(p) - np.cumsum(q)).sum(), rel=1e-9)
    assert speckle_statistics(real, real)['distance']['js'] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match='empty'):
        speckle_statistics(real, [])


def test_real_sos_tiles(sos_mini):
    paths = list_real_images(osp.join(sos_mini, 'train', 'palsar'), 'auto', max_samples=4)
    assert len(paths) == 4 and all(p.endswith('_sat.jpg') for p in paths)
    images = [read_image(p) for p in paths]
    assert all(im.ndim == 2 and im.dtype == np.uint8 for im in images)  # three equal channels -> grey
    s = speckle_statistics(images, images[:2])
    assert s['real']['enl_mean'] > 0 and 0 <= s['distance']['js'] <= 1


def test_real_sos_label_shares(sos_mini):
    """The real tiles' class shares: SOS masks read by hand (grey >= 128 is oil) against real_label_maps."""
    root = osp.join(sos_mini, 'train', 'palsar')
    paths = list_real_images(root, 'auto', max_samples=6)
    maps = list(real_label_maps(root, 'auto', paths))  # a generator: one label map at a time
    hand = [(cv2.imread(p[:-len('_sat.jpg')] + '_mask.png', cv2.IMREAD_GRAYSCALE) >= 128).astype(np.uint8)
            for p in paths]
    assert all(np.array_equal(m, h) for m, h in zip(maps, hand))
    oil = sum(int(h.sum()) for h in hand) / sum(h.size for h in hand)
    assert class_shares(maps, 2) == pytest.approx([1 - oil, oil], abs=1e-12)
    assert real_label_maps(root, 'folder', paths) is None  # a plain folder has no labels
    sat = osp.join(sos_mini, 'test', 'palsar', 'sat')  # test layout: the masks are in gt/ beside sat/
    paths = list_real_images(sat, 'sos', max_samples=2)
    hand = [cv2.imread(osp.join(sos_mini, 'test', 'palsar', 'gt', osp.basename(p)[:-len('_sat.jpg')] + '_mask.png'),
                       cv2.IMREAD_GRAYSCALE) >= 128 for p in paths]
    assert all(np.array_equal(m, h) for m, h in zip(real_label_maps(sat, 'sos', paths), hand))


def test_class_shares_hand_counts():
    maps = [np.array([[0, 1, 255], [1, 1, 0]]), np.array([[2, 255]])]  # 6 labelled pixels: 2x0, 3x1, 1x2
    assert class_shares(maps, 3) == pytest.approx([2 / 6, 3 / 6, 1 / 6])
    with pytest.raises(ValueError, match='class index 3 outside 0..2'):
        class_shares([np.array([[3]])], 3)


# ------------------------------------------------------------------------------------------------------------
# Label-image consistency
# ------------------------------------------------------------------------------------------------------------

def _pairs():
    labels = [np.array([[0, 0, 1, 1], [0, 2, 2, 1]]), np.array([[0, 0, 0, 0], [1, 1, 0, 0]])]
    pairs = []
    for lab in labels:
        logits = np.stack([(lab == k).astype(np.float16) * 4 - 2 for k in range(4)])  # class 3 never present
        pairs.append(((lab * 50).astype(np.uint8), logits))  # the image encodes the label (fake predictor)
    return pairs


def test_label_consistency_perfect_predictor():
    out = label_image_consistency(lambda img: img // 50, _pairs(), 4, ['sea', 'oil', 'look', 'ship'])
    assert out['mIoU'] == pytest.approx(1.0) and out['aAcc'] == pytest.approx(1.0)
    assert out['IoU']['oil'] == pytest.approx(1.0) and np.isnan(out['IoU']['ship'])
    assert out['num_images'] == 2 and out['num_pixels'] == 16


def test_label_consistency_always_background():
    out = label_image_consistency(lambda img: np.zeros(img.shape, np.int64), _pairs(), 4)
    # labels: 9 background, 5 class 1, 2 class 2 of 16 pixels; prediction all 0
    assert out['IoU']['0'] == pytest.approx(9 / 16)
    assert out['IoU']['1'] == 0 and out['IoU']['2'] == 0 and np.isnan(out['IoU']['3'])
    assert out['mIoU'] == pytest.approx((9 / 16) / 3) and out['aAcc'] == pytest.approx(9 / 16)
    assert out['pred_share'] == {'0': 1.0, '1': 0.0, '2': 0.0, '3': 0.0}
    assert out['label_share'] == pytest.approx({'0': 9 / 16, '1': 5 / 16, '2': 2 / 16, '3': 0.0})
    with pytest.raises(ValueError, match='differ'):
        label_image_consistency(lambda img: np.zeros((3, 3), int), _pairs(), 4)


def test_label_consistency_skips_unlabelled_pixels():
    """Pixels of an (H, W) label map equal to ignore_index (a masked D_aug's unlabelled ones) drop out of every
    count: the result is that of the labelled pixels alone, by hand."""
    lab = np.array([[0, 0, 1, 1], [0, 255, 255, 1]])
    pred = np.array([[0, 1, 1, 0], [1, 1, 0, 1]])
    out = label_image_consistency(lambda img: pred, [(np.zeros((2, 4), np.uint8), lab)], 2)
    # labelled: 3 x class 0 (pred 0, 1, 1), 3 x class 1 (pred 1, 0, 1); the two unlabelled pixels count nowhere.
    # class 0: TP 1, union 3 + 2 - 1; class 1: TP 2, union 3 + 4 - 2
    assert out['num_pixels'] == 6 and out['aAcc'] == pytest.approx(3 / 6)
    assert out['IoU']['0'] == pytest.approx(1 / 4) and out['IoU']['1'] == pytest.approx(2 / 5)
    assert out['pred_share'] == pytest.approx({'0': 2 / 6, '1': 4 / 6})
    assert out['label_share'] == pytest.approx({'0': 0.5, '1': 0.5})
    same = label_image_consistency(lambda img: pred, [(None, np.where(lab == 255, 7, lab))], 2, ignore_index=7)
    assert same == out
    with pytest.raises(ValueError, match='outside 0..1'):
        label_image_consistency(lambda img: pred, [(None, lab)], 2, ignore_index=9)


def test_soft_label_confidence_against_scipy():
    from scipy.special import softmax
    from scipy.stats import entropy
    rng = np.random.default_rng(0)
    maps = [rng.normal(0, 3, (3, 8, 9)), rng.normal(1, 5, (3, 5, 4)) * np.array([1, 0.2, 2])[:, None, None]]
    out = soft_label_confidence(maps, temperature=2.0)
    z = np.concatenate([m.reshape(3, -1) for m in maps], 1)
    top = np.sort(z, 0)
    margin = top[-1] - top[-2]
    p = softmax(z / 2.0, axis=0)
    assert out['num_pixels'] == z.shape[1] and out['temperature'] == 2.0
    assert out['mean_entropy'] == pytest.approx(entropy(p, axis=0).mean(), rel=1e-12)
    assert out['mean_top1_prob'] == pytest.approx(p.max(0).mean(), rel=1e-12)
    assert out['share_margin_below_1'] == pytest.approx((margin < 1).mean())
    for q in (10, 50, 90):  # binned quantiles: within one bin (0.01) of the exact order statistic
        assert abs(out[f'margin_p{q}'] - np.quantile(margin, q / 100, method='inverted_cdf')) <= 0.01
    # by hand: two classes, margins 0 and 4 at T = 1: entropies ln 2 and the binary entropy of sigmoid(4)
    hand = soft_label_confidence([np.array([[[0.0, 4.0]], [[0.0, 0.0]]])])
    s4 = 1 / (1 + np.exp(-4.0))
    assert hand['mean_entropy'] == pytest.approx((np.log(2) - s4 * np.log(s4) - (1 - s4) * np.log(1 - s4)) / 2)
    assert hand['share_margin_below_1'] == 0.5 and hand['margin_p90'] == pytest.approx(4.005)
    assert hand['margin_p10'] == pytest.approx(0.005)
    # a colder (larger-margin) label set is harder: lower entropy, higher top-1 probability
    cold = soft_label_confidence([m * 3 for m in maps], temperature=2.0)
    assert cold['mean_entropy'] < out['mean_entropy'] and cold['margin_p50'] > out['margin_p50']
    with pytest.raises(ValueError, match='temperature'):
        soft_label_confidence(maps, temperature=0)
    with pytest.raises(ValueError, match='K >= 2'):
        soft_label_confidence([np.zeros((1, 2, 2))])
    with pytest.raises(ValueError, match='NaN'):
        soft_label_confidence([np.full((2, 2, 2), np.nan)])
    with pytest.raises(ValueError, match='no logits'):
        soft_label_confidence([])


# ------------------------------------------------------------------------------------------------------------
# Grid
# ------------------------------------------------------------------------------------------------------------

def test_save_generation_grid(tmp_path):
    images = np.full((3, 16, 20), 100, np.uint8)
    labels = np.zeros((3, 16, 20), np.int64)
    labels[:, 4:8, 5:10] = 1
    path = save_generation_grid(images, labels, SOS_OVERLAY_PALETTE, str(tmp_path / 'sub' / 'grid.png'),
                                ncols=2)
    assert osp.isfile(path) and not [f for f in os.listdir(tmp_path / 'sub') if '.tmp' in f]
    grid = cv2.imread(path)[..., ::-1]
    pad = 2
    assert grid.shape == (2 * 16 + 3 * pad, 2 * 2 * 20 + 5 * pad, 3)
    y, x = pad + 5, pad + 20 + pad + 6  # inside the overlay panel of sample 0, in the oil region
    assert tuple(grid[y, x]) == (178, 50, 50)  # 0.5 * grey 100 + 0.5 * red
    assert tuple(grid[pad + 5, pad + 6]) == (100, 100, 100)  # the plain SAR panel
    assert tuple(grid[pad + 12, pad + 20 + pad + 1]) == (100, 100, 100)  # background is not tinted
    # logits are accepted too (argmax drawn), with the OSD palette
    logits = np.stack([labels == k for k in range(5)], axis=1).astype(np.float32)
    osd = [tuple(c) for c in OSDDataset.METAINFO['palette']]
    path2 = save_generation_grid(images, logits, osd, str(tmp_path / 'g2.png'), ncols=3)
    grid2 = cv2.imread(path2)[..., ::-1]
    assert grid2.shape == (16 + 2 * pad, 6 * 20 + 7 * pad, 3)
    assert tuple(grid2[y, x]) == (50, 178, 178)  # oil is cyan in OSD's palette


def test_generation_metrics_gathers_the_public_names():
    from projects.sar_oilspill.evaluation import fid, image_sets, label_consistency, speckle_stats
    for module in (fid, image_sets, label_consistency, speckle_stats):
        for name in dir(module):
            if name in generation_metrics.__all__:
                assert getattr(generation_metrics, name) is getattr(module, name)
    assert generation_metrics.speckle_statistics is speckle_statistics
    assert generation_metrics.load_daug is load_daug and generation_metrics.read_image is read_image


# ------------------------------------------------------------------------------------------------------------
# Command-line tools
# ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_daug(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('daug') / 'daug')
    for i in range(6):
        image, label = make_sar_scene(500 + i, 64, 96)
        logits = np.stack([np.where(label == k, 3.0, -1.0) for k in range(5)]).astype(np.float32)
        write_daug_sample(root, f's{i:06d}', image, logits)
    write_daug_manifest(root, dict(classes=OSD_CLASSES, num_classes=5,
                                   palette=OSDDataset.METAINFO['palette']))
    return root


def _load_tool(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_generation_cli(tiny_daug, synthetic_osd, fake_inception, tmp_path, tiny_fcn_segmentor):
    # a tiny ResNet/FCN whose classifier always says class 0
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, OSDDataset.METAINFO, bias=[5.0, 0, 0, 0, 0])
    out = tmp_path / 'metrics.json'
    env = dict(os.environ, OMP_NUM_THREADS='2')
    real = osp.join(synthetic_osd, 'train', 'images')
    r = subprocess.run([sys.executable, EVAL_TOOL, tiny_daug, '--real-root', real, '--real-type', 'osd',
                        '--inception', fake_inception, '--seg-config', cfg, '--seg-checkpoint', ckpt,
                        '--max-samples', '5', '--out', str(out), '--device', 'cpu'],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'FID' in r.stdout and 'Jensen-Shannon' in r.stdout and 'consistency mIoU' in r.stdout
    res = json.loads(out.read_text())
    assert res['num_gen'] == 5 and res['num_real'] == 5 and res['classes'] == OSD_CLASSES
    assert res['fid_is']['fid'] >= 0 and res['fid_is']['is_mean'] >= 1
    assert res['speckle']['real']['num_images'] == 5 and 0 < res['speckle']['distance']['js'] < 1
    # the segmentor always predicts sea: IoU(sea) = sea pixels / all pixels of the generated labels
    _, samples = load_daug(tiny_daug, 5)
    labels = np.stack([np.load(s['logits_path']).argmax(0) for s in samples])
    lc = res['label_consistency']
    assert lc['IoU']['sea_surface'] == pytest.approx(np.mean(labels == 0), rel=1e-6)
    assert lc['IoU']['oil_spill'] == 0
    present = len(np.unique(labels))
    assert lc['mIoU'] == pytest.approx(np.mean(labels == 0) / present, rel=1e-6)


def test_eval_generation_offline_and_errors(tiny_daug, synthetic_osd, tmp_path, capsys, monkeypatch):
    tool = _load_tool(EVAL_TOOL, 'eval_generation_tool')
    real = osp.join(synthetic_osd, 'train', 'images')
    out = tmp_path / 'offline.json'
    reads, read_logits = [], tool.read_daug_logits
    monkeypatch.setattr(tool, 'read_daug_logits', lambda path, k: reads.append(path) or read_logits(path, k))
    assert tool.main([tiny_daug, '--real-root', real, '--out', str(out)]) == 0  # auto -> folder of .jpg
    monkeypatch.setattr(tool, 'read_daug_logits', read_logits)
    text = capsys.readouterr().out
    assert 'FID/IS skipped' in text and 'no Inception weights' in text
    res = json.loads(out.read_text())
    assert res['fid_is'] is None and res['label_consistency'] is None and res['num_gen'] == 6
    assert res['num_real'] == 12
    # class shares of the generated labels: argmax and mean softmax of the stored logits, by hand; a folder of
    # images has no real labels
    _, samples = load_daug(tiny_daug, 6)
    # one read of each logits file serves the class shares and the label confidence (no segmentor given)
    assert sorted(reads) == sorted(s['logits_path'] for s in samples)
    logits = np.stack([np.load(s['logits_path']).astype(np.float64) for s in samples])  # (N, K, H, W)
    argmax = np.bincount(logits.argmax(1).ravel(), minlength=len(OSD_CLASSES)) / logits[:, 0].size
    prob = torch.softmax(torch.from_numpy(logits), 1).mean((0, 2, 3)).numpy()
    assert res['label_shares']['generated'] == pytest.approx(argmax.tolist(), abs=1e-12)
    assert res['label_shares']['generated_mean_prob'] == pytest.approx(prob.tolist(), abs=1e-9)
    assert res['label_shares']['real'] is None and 'oil_spill pixel share (%)' in text
    # soft-label confidence at the default KD temperature 2, by hand with torch
    z = torch.from_numpy(logits).permute(1, 0, 2, 3).reshape(len(OSD_CLASSES), -1)
    p = torch.softmax(z / 2.0, 0)
    assert res['label_confidence']['mean_entropy'] == pytest.approx(float(-(p * p.log()).sum(0).mean()), rel=1e-9)
    top = z.topk(2, 0).values
    below_1 = float((top[0] - top[1] < 1).double().mean())
    assert res['label_confidence']['share_margin_below_1'] == pytest.approx(below_1)
    assert 'mean entropy at T = 2' in text
    assert tool.main([tiny_daug, '--real-root', real, '--real-type', 'osd', '--out', str(out)]) == 0
    real_shares = json.loads(out.read_text())['label_shares']['real']  # OSD masks decoded (hand check: SOS test)
    assert len(real_shares) == len(OSD_CLASSES) and sum(real_shares) == pytest.approx(1.0)
    # --logit-offset: a constant per class added before the argmax / softmax (by hand with numpy and torch)
    assert tool.main([tiny_daug, '--real-root', real, '--out', str(out), '--logit-offset', 'oil_spill=3.75',
                      '0=-0.5']) == 0
    assert 'sea_surface -0.5, oil_spill +3.75' in capsys.readouterr().out
    res = json.loads(out.read_text())
    shift = np.zeros(len(OSD_CLASSES))
    shift[1], shift[0] = 3.75, -0.5
    moved = logits + shift[None, :, None, None]
    moved_argmax = np.bincount(moved.argmax(1).ravel(), minlength=len(OSD_CLASSES)) / logits[:, 0].size
    assert res['label_shares']['generated'] == pytest.approx(moved_argmax.tolist(), abs=1e-12)
    # logits 3 (labelled) / -1: sea pixels now say oil (2.75 > 2.5), the other classes keep theirs (3 > 2.75)
    assert moved_argmax[1] == pytest.approx(argmax[0] + argmax[1]) and moved_argmax[0] == 0 < argmax[0]
    assert res['label_shares']['generated_mean_prob'] == pytest.approx(
        torch.softmax(torch.from_numpy(moved), 1).mean((0, 2, 3)).numpy().tolist(), abs=1e-9)
    assert res['logit_offset'] == dict(zip(OSD_CLASSES, shift.tolist()))
    for bad in ('oil=1', 'oil_spill', '9=1', 'oil_spill=nan'):
        assert tool.main([tiny_daug, '--real-root', real, '--logit-offset', bad]) == 2
        assert f"--logit-offset '{bad}'" in capsys.readouterr().err

    assert tool.main([str(tmp_path / 'nope'), '--real-root', real]) == 2
    err = capsys.readouterr().err
    assert 'nope' in err and 'manifest.json' in err
    assert 'images/<name>.png' in err and 'logits/<name>.npy' in err

    assert tool.main([tiny_daug, '--real-root', real, '--inception', str(tmp_path / 'missing.pt')]) == 2
    err = capsys.readouterr().err
    assert 'missing.pt' in err and 'inception-2015-12-05.pt' in err and '--inception PATH' in err

    assert tool.main([tiny_daug, '--real-root', str(tmp_path / 'no_real')]) == 2
    assert 'no_real' in capsys.readouterr().err


def test_eval_generation_honours_label_masks(tiny_daug, synthetic_osd, tmp_path, capsys, tiny_fcn_segmentor):
    """A masked D_aug (label_mask: true, valid/<name>.png): the label shares, the soft labels' confidence and the
    label-image consistency count its labelled pixels only (by hand with numpy / torch), and the labelled share is
    reported; the same files without the manifest flag count every pixel."""
    import shutil
    from projects.sar_oilspill.datasets.daug import DAugFolder
    root = str(tmp_path / 'masked')
    shutil.copytree(tiny_daug, root)
    folder = DAugFolder(root)
    manifest = folder.read_manifest()
    names = folder.sample_names(manifest)
    rng = np.random.default_rng(3)
    masks, logits = [], []
    for name in names:
        z = folder.read_logits(name).astype(np.float32)
        z[1] += rng.normal(0, 1.5, z.shape[1:]).astype(np.float32)  # margins that vary, so the mask matters
        valid = rng.random(z.shape[1:]) < 0.6
        valid[:8] = False  # an unlabelled band
        folder.write_sample(name, folder.read_image(name), z, valid)
        masks.append(valid)
        logits.append(np.load(folder.logits_path(name)).astype(np.float64))
    write_daug_manifest(root, dict(manifest, label_mask=True))
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, OSDDataset.METAINFO, bias=[5.0, 0, 0, 0, 0])  # always sea
    tool = _load_tool(EVAL_TOOL, 'eval_generation_masked')
    real = osp.join(synthetic_osd, 'train', 'images')
    out = tmp_path / 'masked.json'
    assert tool.main([root, '--real-root', real, '--out', str(out), '--seg-config', cfg, '--seg-checkpoint',
                      ckpt]) == 0
    assert 'labelled pixels of the masked D_aug' in capsys.readouterr().out
    res = json.loads(out.read_text())
    k = len(OSD_CLASSES)
    z = np.concatenate([l[:, m] for l, m in zip(logits, masks)], 1)  # (K, labelled pixels)
    assert res['label_mask']['labelled_share'] == pytest.approx(np.mean(masks))
    shares = np.bincount(z.argmax(0), minlength=k) / z.shape[1]
    assert res['label_shares']['generated'] == pytest.approx(shares.tolist(), abs=1e-12)
    p = torch.softmax(torch.from_numpy(z) / 2.0, 0)
    assert res['label_confidence']['num_pixels'] == z.shape[1]
    assert res['label_confidence']['mean_entropy'] == pytest.approx(float(-(p * p.log()).sum(0).mean()), rel=1e-9)
    lc = res['label_consistency']  # the segmentor says sea everywhere: IoU(sea) = labelled sea / labelled pixels
    assert lc['num_pixels'] == z.shape[1]
    assert lc['IoU']['sea_surface'] == pytest.approx(shares[0], rel=1e-9)
    # the manifest decides: unflagged, the same files count every pixel
    write_daug_manifest(root, manifest)
    assert tool.main([root, '--real-root', real, '--out', str(out)]) == 0
    res = json.loads(out.read_text())
    assert 'label_mask' not in res
    assert res['label_confidence']['num_pixels'] == sum(m.size for m in masks)


def test_make_grid_cli(tiny_daug, tmp_path, capsys):
    tool = _load_tool(GRID_TOOL, 'make_grid_tool')
    out = tmp_path / 'grid.png'
    assert tool.main([tiny_daug, '--out', str(out), '--num', '4', '--ncols', '2']) == 0
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 64 + 3 * 2, 4 * 96 + 5 * 2, 3)
    assert tool.main([str(tmp_path / 'nope'), '--out', str(out)]) == 2
    assert 'not a D_aug folder' in capsys.readouterr().err


def test_seg_predictor_refuses_a_segmentor_of_other_classes(tmp_path, tiny_fcn_segmentor):
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, dict(classes=['background', 'oil_spill']))
    tool = _load_tool(EVAL_TOOL, 'eval_generation')
    with pytest.raises(ValueError, match=r'decode_head\.num_classes=2 but the D_aug has 5 classes'):
        tool.build_seg_predictor(cfg, ckpt, 'cpu', list(OSD_CLASSES))
