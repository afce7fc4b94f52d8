"""Tests of the balancing factor (paper Eq. 4 / 20) against hand computations."""
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.sar_oilspill.models.generators.balancing_factor import (
    BalancingFactorAccumulator, compute_balancing_factor, image_to_signed_unit,
    label_to_signed_onehot, mean_fft_power)

DATA_ROOT = Path(__file__).resolve().parents[3] / '..' / 'shared' / 'data' / 'sos_mini'


def test_constant_image_power_is_dc_only():
    # FFT of a constant c (H x W) is c*H*W at DC and 0 elsewhere -> mean |X|^2 = c^2 * H * W.
    h, w, c = 7, 5, -0.3
    x = np.full((h, w), c)
    assert mean_fft_power(x) == pytest.approx(c**2 * h * w, rel=1e-12)
    # 'ortho': |X_dc|^2 = (c * sqrt(HW))^2 -> mean = c^2
    assert mean_fft_power(x, fft_norm='ortho') == pytest.approx(c**2, rel=1e-12)


def test_sinusoid_power_matches_analytic_value():
    # A cos(2 pi k m / H): two spectral lines of magnitude A*H*W/2 -> mean power A^2 * H * W / 2.
    h, w, k, amp = 16, 12, 3, 0.8
    m = np.arange(h).reshape(-1, 1)
    x = amp * np.cos(2 * np.pi * k * m / h) * np.ones((1, w))
    assert mean_fft_power(x) == pytest.approx(amp**2 * h * w / 2, rel=1e-10)
    # with a DC offset the DC line adds d^2 * H * W
    d = 0.1
    assert mean_fft_power(x + d) == pytest.approx((amp**2 / 2 + d**2) * h * w, rel=1e-10)


def test_parseval_cross_check_and_channel_mean():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3, 9, 13))
    per_channel = [np.sum(x[c]**2) for c in range(3)]  # Parseval, unnormalised DFT
    assert mean_fft_power(x) == pytest.approx(np.mean(per_channel), rel=1e-10)
    assert mean_fft_power(x[1]) == pytest.approx(per_channel[1], rel=1e-10)
    assert mean_fft_power(x, fft_norm='ortho') == pytest.approx(np.mean(x**2), rel=1e-10)
    assert mean_fft_power(torch.from_numpy(x)) == pytest.approx(np.mean(per_channel), rel=1e-10)


def test_signed_onehot_and_image_scaling():
    label = np.array([[0, 1], [2, 0]])
    expected = np.array([[[1, -1], [-1, 1]], [[-1, 1], [-1, -1]], [[-1, -1], [1, -1]]], float)
    np.testing.assert_array_equal(label_to_signed_onehot(label, 3), expected)
    np.testing.assert_allclose(image_to_signed_unit(np.array([[0, 255], [127.5, 51]])),
                               [[-1.0, 1.0], [0.0, -0.6]])
    with pytest.raises(ValueError, match='255'):
        label_to_signed_onehot(np.array([[0, 255]]), 2)
    with pytest.raises(ValueError, match=r'\[0, 255'):
        image_to_signed_unit(np.array([[0, 300]]))


def test_accumulator_hand_example():
    h, w = 4, 6
    img1 = np.full((h, w), 0.5)  # P = 0.25 * 24 = 6
    lab1 = np.zeros((h, w), dtype=np.int64)
    img2 = np.cos(2 * np.pi * np.arange(h) / h).reshape(-1, 1) * np.ones((1, w))  # P = 24 / 2 = 12
    lab2 = np.zeros((h, w), dtype=np.int64)
    lab2[:, 3:] = 1
    # every channel of a {-1, 1} mask has sum x^2 = H*W -> P_mask = 24 for both masks
    expected = np.sqrt(((6 + 12) / 2) / 24)  # Eq. 20
    acc = BalancingFactorAccumulator(num_classes=2)
    acc.update(img1, lab1)
    acc.update(img2, lab2)
    assert acc.mean_powers() == pytest.approx((9.0, 24.0), rel=1e-12)
    assert acc.value() == pytest.approx(expected, rel=1e-12)
    assert compute_balancing_factor([(img1, lab1), (img2, lab2)], 2) == pytest.approx(expected)
    # streaming == merged shards
    a, b = BalancingFactorAccumulator(2), BalancingFactorAccumulator(2)
    a.update(img1, lab1)
    b.update(img2, lab2)
    a.merge(b)
    assert a.value() == pytest.approx(expected, rel=1e-12)


def test_accumulator_uint8_path_and_errors():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(3, 11, 7)).astype(np.uint8)
    lab = rng.integers(0, 3, size=(11, 7))
    x = raw.astype(np.float64) / 127.5 - 1
    # Parseval: P_img = H*W*mean_c mean(x_c^2), P_mask = H*W  ->  b = RMS of the image
    expected = np.sqrt(np.mean(x**2))
    assert compute_balancing_factor([(raw, lab)], 3, image_max_value=255) == pytest.approx(expected)
    acc = BalancingFactorAccumulator(2)
    with pytest.raises(RuntimeError):
        acc.value()
    with pytest.raises(ValueError, match=r'\[-1, 1\]'):
        acc.update(raw.astype(np.float64), lab % 2)
    with pytest.raises(ValueError, match='differ'):
        acc.update(x, np.zeros((5, 5), dtype=np.int64))


@pytest.mark.parametrize('subset,expected', [('palsar', 0.433), ('sentinel', 0.463)])
def test_sos_mini_balancing_factor(subset, expected):
    cv2 = pytest.importorskip('cv2')
    folder = DATA_ROOT / 'train' / subset
    if not folder.is_dir():
        pytest.skip(f'{folder} not present')
    ids = sorted(p.name[:-len('_sat.jpg')] for p in folder.glob('*_sat.jpg'))
    assert len(ids) > 0
    acc = BalancingFactorAccumulator(num_classes=2)
    sum_sq, n_pix = 0.0, 0
    for i in ids:
        img = cv2.imread(str(folder / f'{i}_sat.jpg'), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(folder / f'{i}_mask.png'), cv2.IMREAD_GRAYSCALE)
        assert img is not None and mask is not None, i
        label = (mask >= 128).astype(np.int64)  # oil = 255, threshold at 128
        x = image_to_signed_unit(img)
        acc.update(x, label)
        sum_sq += float(np.sum(x**2))
        n_pix += x.size
    b = acc.value()
    assert b == pytest.approx(expected, abs=1e-3)
    # all tiles have the same size, so by Parseval b is the RMS of all pixels
    assert b == pytest.approx(np.sqrt(sum_sq / n_pix), rel=1e-9)
