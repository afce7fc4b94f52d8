import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS

PIPE = [dict(type='LoadImageFromFile'), dict(type='LoadOilSpillAnnotations'), dict(type='PackSegInputs')]


def _build(root, seg='train/labels_1D'):
    return DATASETS.build(dict(type='OSDDataset', data_root=root,
                               data_prefix=dict(img_path='train/images', seg_map_path=seg), pipeline=PIPE))


def test_labels_1d_and_rgb_fallback_agree(synthetic_osd, tmp_path):
    ds_1d = _build(synthetic_osd)
    root = str(tmp_path / 'osd_rgb_only')
    shutil.copytree(synthetic_osd, root)
    shutil.rmtree(osp.join(root, 'train', 'labels_1D'))
    with pytest.warns(UserWarning, match='converting RGB labels'):
        ds_rgb = _build(root)
    assert len(ds_1d) == len(ds_rgb) == 12
    for i in range(len(ds_1d)):
        a = ds_1d[i]['data_samples'].gt_sem_seg.data
        b = ds_rgb[i]['data_samples'].gt_sem_seg.data
        assert a.shape[-2:] == (64, 96) and int(a.max()) <= 4
        assert a.equal(b)


def test_unknown_colour_names_file(synthetic_osd, tmp_path):
    root = str(tmp_path / 'osd_bad')
    shutil.copytree(synthetic_osd, root)
    shutil.rmtree(osp.join(root, 'train', 'labels_1D'))
    bad = osp.join(root, 'train', 'labels', 'img_0002.png')
    img = cv2.imread(bad)
    img[0, 0] = (1, 2, 3)  # BGR on disk -> RGB (3, 2, 1)
    cv2.imwrite(bad, img)
    with pytest.warns(UserWarning):
        ds = _build(root)
    with pytest.raises(ValueError, match=r'img_0002\.png.*\(3,2,1\)'):
        ds[2]


def test_out_of_range_index_label(synthetic_osd, tmp_path):
    root = str(tmp_path / 'osd_idx')
    shutil.copytree(synthetic_osd, root)
    path = osp.join(root, 'train', 'labels_1D', 'img_0000.png')
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    label[3, 3] = 9
    cv2.imwrite(path, label)
    with pytest.raises(ValueError, match=r'img_0000\.png: label values \[9\]'):
        _build(root)[0]


def test_reduce_zero_label_refused(synthetic_osd):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        DATASETS.build(dict(type='OSDDataset', data_root=synthetic_osd, reduce_zero_label=True,
                            data_prefix=dict(img_path='train/images', seg_map_path='train/labels_1D')))
