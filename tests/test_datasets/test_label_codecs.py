import numpy as np
import pytest

from projects.sar_oilspill.datasets.label_codecs import (LabelDecodeError, decode_index, decode_palette,
                                                         decode_threshold, encode_palette)
from projects.sar_oilspill.datasets.osd import OSDDataset

PALETTE = OSDDataset.METAINFO['palette']


def test_threshold_maps_255_to_oil_not_ignore():
    # SOS stores oil as 255; read naively it would become mmseg's ignore label.
    mask = np.array([[0, 127, 128, 255]], np.uint8)
    rgb = np.repeat(mask[..., None], 3, axis=2)
    out = decode_threshold(rgb)
    assert out.tolist() == [[0, 0, 1, 1]]
    assert out.max() == 1 and 255 not in out


def test_threshold_rejects_16bit():
    with pytest.raises(LabelDecodeError, match='8-bit'):
        decode_threshold(np.zeros((2, 2), np.uint16), path='x.png')


def test_palette_exact_roundtrip_and_order():
    label = np.array([[0, 1, 2], [3, 4, 1]], np.uint8)
    rgb = encode_palette(label, PALETTE)
    # hand-checked colours from the OSD documentation
    assert rgb[0, 1].tolist() == [0, 255, 255] and rgb[1, 0].tolist() == [153, 76, 0]
    assert np.array_equal(decode_palette(rgb, PALETTE), label)


def test_palette_unknown_colour_names_file_and_colour():
    rgb = encode_palette(np.zeros((3, 3), np.uint8), PALETTE)
    rgb[1, 1] = (10, 20, 30)
    with pytest.raises(LabelDecodeError) as e:
        decode_palette(rgb, PALETTE, path='labels/img_0007.png')
    assert 'labels/img_0007.png' in str(e.value) and '(10,20,30)' in str(e.value) and '1 pixels' in str(e.value)


def test_index_out_of_range_is_an_error():
    assert decode_index(np.array([[0, 4, 255]], np.uint8), 5).tolist() == [[0, 4, 255]]
    with pytest.raises(LabelDecodeError, match=r'\[5, 7\]'):
        decode_index(np.array([[0, 5, 7]], np.uint8), 5, path='a.png')
    with pytest.raises(LabelDecodeError, match='RGB'):
        decode_index(encode_palette(np.array([[1]], np.uint8), PALETTE), 5)
