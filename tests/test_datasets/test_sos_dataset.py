import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS

PIPE = [dict(type='LoadImageFromFile'), dict(type='LoadOilSpillAnnotations'), dict(type='PackSegInputs')]


def _write_pair(folder_img, folder_gt, name, size=(24, 16), oil_value=255, edge_value=None):
    os.makedirs(folder_img, exist_ok=True)
    os.makedirs(folder_gt, exist_ok=True)
    h, w = size
    img = np.full((h, w, 3), 90, np.uint8)
    mask = np.zeros((h, w, 3), np.uint8)
    mask[: h // 2] = oil_value
    if edge_value is not None:
        mask[h // 2] = edge_value  # compression residue along the edge
    cv2.imwrite(osp.join(folder_img, f'{name}_sat.jpg'), img)
    cv2.imwrite(osp.join(folder_gt, f'{name}_mask.png'), mask)
    return mask


def _build(root, img, seg, **kw):
    return DATASETS.build(dict(type='SOSDataset', data_root=str(root),
                               data_prefix=dict(img_path=img, seg_map_path=seg), pipeline=PIPE, **kw))


def test_flat_train_and_split_test_layouts(tmp_path):
    _write_pair(tmp_path / 'train/palsar', tmp_path / 'train/palsar', '1', edge_value=200)
    _write_pair(tmp_path / 'train/palsar', tmp_path / 'train/palsar', '2', edge_value=100)
    _write_pair(tmp_path / 'test/palsar/sat', tmp_path / 'test/palsar/gt', '3')
    train = _build(tmp_path, 'train/palsar', 'train/palsar')
    assert len(train) == 2  # masks in the same flat folder are not taken for images
    for i, edge in ((0, 1), (1, 0)):
        label = train[i]['data_samples'].gt_sem_seg.data[0].numpy()
        assert set(np.unique(label)) <= {0, 1}
        assert (label[:12] == 1).all() and (label[13:] == 0).all() and (label[12] == edge).all()
    test = _build(tmp_path, 'test/palsar/sat', 'test/palsar/gt')
    assert len(test) == 1 and test.metainfo['classes'] == ('background', 'oil_spill')


def test_missing_mask_is_reported_before_training(tmp_path):
    _write_pair(tmp_path / 'train', tmp_path / 'train', 'a')
    cv2.imwrite(str(tmp_path / 'train' / 'b_sat.jpg'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r'1 of 2 images have no mask.*b_mask\.png'):
        _build(tmp_path, 'train', 'train')


def test_missing_root_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _build(tmp_path / 'nope', 'train', 'train')
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='no images'):
        _build(tmp_path, 'empty', 'empty')


def test_wrong_size_and_unreadable_mask(tmp_path):
    _write_pair(tmp_path / 'train', tmp_path / 'train', 'a')
    cv2.imwrite(str(tmp_path / 'train' / 'a_mask.png'), np.zeros((5, 5, 3), np.uint8))
    ds = _build(tmp_path, 'train', 'train')
    with pytest.raises(ValueError, match=r'a_mask\.png: label map is 5x5'):
        ds[0]
    with open(tmp_path / 'train' / 'a_mask.png', 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(OSError, match='unreadable label map'):
        _build(tmp_path, 'train', 'train')[0]


def test_unreadable_image_names_the_file(tmp_path):
    _write_pair(tmp_path / 'train', tmp_path / 'train', 'a')
    with open(tmp_path / 'train' / 'a_sat.jpg', 'wb') as f:
        f.write(b'not a jpeg')
    ds = _build(tmp_path, 'train', 'train')
    with pytest.raises(OSError, match=r'a_sat\.jpg: unreadable image.*expected an _sat\.jpg image'):
        ds[0]


def test_real_sos_mini_palsar(sos_mini):
    ds = _build(sos_mini, 'train/palsar', 'train/palsar')
    assert len(ds) == 400
    fractions = []
    for i in range(0, 400, 40):
        sample = ds[i]
        label = sample['data_samples'].gt_sem_seg.data
        assert label.shape[-2:] == (256, 256)
        assert set(label.unique().tolist()) <= {0, 1}
        fractions.append(float(label.float().mean()))
    # the README of the subset: oil covers roughly 17-35 % of pixels; never all "ignore"
    assert 0.05 < np.mean(fractions) < 0.6
    test = _build(sos_mini, 'test/sentinel/sat', 'test/sentinel/gt')
    assert len(test) == 100
