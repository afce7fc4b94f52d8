"""The image normalisation shared by the grid drawing and the generation measures, against hand computations."""
import numpy as np
import pytest

from projects.sar_oilspill.evaluation import fid
from projects.sar_oilspill.visualization import grid
from projects.sar_oilspill.visualization.image_utils import as_uint8_rgb, channels_equal, to_gray


def test_as_uint8_rgb_float_grey_by_hand():
    img = np.array([[-3.2, 0.5, 1.5], [254.5, 255.6, 100.49]])
    # round half to even, then clip to [0, 255]: -3 -> 0, 0.5 -> 0, 1.5 -> 2, 254.5 -> 254, 256 -> 255, 100
    grey = np.array([[0, 0, 2], [254, 255, 100]], np.uint8)
    out = as_uint8_rgb(img)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    for c in range(3):
        assert out[..., c].tolist() == grey.tolist()
    # (H, W, 1) is the same grey image
    assert np.array_equal(as_uint8_rgb(img[..., None]), out)


def test_as_uint8_rgb_keeps_uint8_rgb_and_rejects_other_shapes():
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    assert as_uint8_rgb(rgb) is rgb  # already (H, W, 3) uint8: returned as it is
    assert as_uint8_rgb(np.array([[7]], np.uint8)).tolist() == [[[7, 7, 7]]]
    for shape in ((4, ), (2, 2, 2), (2, 2, 4), (1, 2, 2, 3)):
        with pytest.raises(ValueError, match=r'expected an \(H, W\) or \(H, W, 3\) image'):
            as_uint8_rgb(np.zeros(shape, np.uint8))


def test_to_gray_and_channels_equal_by_hand():
    grey3 = np.repeat(np.array([[3, 200]], np.uint8)[..., None], 3, axis=2)
    assert channels_equal(grey3) and to_gray(grey3).tolist() == [[3, 200]]
    colour = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    assert not channels_equal(colour)
    # luminance 0.299 R + 0.587 G + 0.114 B, rounded: 76.2, 149.7, 29.1, 18.2
    assert to_gray(colour).tolist() == [[76, 150, 29, 18]]
    assert to_gray(np.array([[1, 2]])).tolist() == [[1, 2]]
    assert to_gray(np.array([[[9]]], np.uint8)).tolist() == [[9]]


def test_one_helper_serves_grid_and_fid():
    assert grid.as_uint8_rgb is as_uint8_rgb and fid.as_uint8_rgb is as_uint8_rgb
