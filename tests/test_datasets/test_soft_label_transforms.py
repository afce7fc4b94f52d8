"""Soft labels through every geometric transform, the packing of their validity, and the real:synthetic mix."""

import numpy as np
import pytest
from mmseg.registry import DATASETS, TRANSFORMS

from projects.sar_oilspill.datasets.dakd_dataset import EpochResampledDataset

H, W, K = 40, 60, 5


def _results(seed=0):
    """An image, a hard label map ``code`` and soft labels whose channel k is ``code + 100 k`` (valid everywhere).

    ``code = 3 x + y`` (< 255) changes by 1 to 4 between a pixel and its 8 neighbours, so a shift between the label
    map and the soft labels shows, and it is smooth, so bilinear rotations can be compared too; the fixed channel
    offsets show whether a pixel holds real logits or a fill value.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    code = (3 * xx + yy).astype(np.uint8)
    soft = np.ones((H, W, K + 1), np.float32)  # LoadSoftLabels' layout: K logits + validity channel (1.0)
    soft[..., :K] = code[..., None].astype(np.float32) + 100.0 * np.arange(K, dtype=np.float32)
    return dict(img=rng.integers(0, 255, (H, W, 3), dtype=np.uint8), gt_seg_map=code, gt_soft_logits=soft,
                seg_fields=['gt_seg_map', 'gt_soft_logits'], img_shape=(H, W), ori_shape=(H, W), img_path='x.png',
                reduce_zero_label=False)


# (transform, exact): exact = the soft labels' channel 0 equals the label map wherever both are labelled; mmseg's
# RandomRotate uses cv2's nearest warp whose rounding differs by a pixel between 1- and 6-channel arrays, and
# RandomRotFlip rotates labels bilinearly (an mmseg choice), so those two are checked up to that.
TRANSFORMS_TO_CHECK = [
    (dict(type='RandomFlip', prob=1.0, direction='horizontal'), True),
    (dict(type='RandomFlip', prob=1.0, direction='vertical'), True),
    (dict(type='RandomFlip', prob=1.0, direction='diagonal'), True),
    (dict(type='RandomCrop', crop_size=(20, 30)), True),
    (dict(type='Resize', scale=(77, 33), keep_ratio=False), True),
    (dict(type='Resize', scale=(77, 33), keep_ratio=True), True),
    (dict(type='RandomResize', scale=(120, 80), ratio_range=(0.5, 2.0), keep_ratio=True), True),
    (dict(type='RandomChoiceResize', scales=[(77, 33)]), True),
    (dict(type='ResizeShortestEdge', scale=(30, 30), max_size=1000), True),
    (dict(type='ResizeToMultiple', size_divisor=32), True),
    (dict(type='RandomRotFlip', rotate_prob=0.0, flip_prob=1.0), True),
    (dict(type='RandomCutOut', prob=1.0, n_holes=3, cutout_shape=(7, 9), seg_fill_in=255), True),
    (dict(type='PadSegFields', size=(70, 50)), True),
    (dict(type='PadSegFields', size_divisor=32), True),
    (dict(type='CenterCropSegFields', crop_size=(24, 18)), True),
    (dict(type='CenterCropSegFields', crop_size=(80, 50), auto_pad=True), True),
    (dict(type='RandomRotate', prob=1.0, degree=(25, 25), seg_pad_val=255), False),
    (dict(type='RandomRotFlip', rotate_prob=1.0, flip_prob=0.0, degree=(20, 20)), False),
]


@pytest.mark.parametrize('cfg,exact', TRANSFORMS_TO_CHECK, ids=[
    f'{c["type"]}-{i}' for i, (c, _) in enumerate(TRANSFORMS_TO_CHECK)])
def test_soft_labels_follow_every_geometric_transform(cfg, exact):
    np.random.seed(0)
    out = TRANSFORMS.build(cfg)(_results())
    out = TRANSFORMS.build(dict(type='PackSegInputsWithSoftLabels'))(out)
    img, sample = out['inputs'], out['data_samples']
    logits, valid = sample.gt_soft_logits.data.numpy(), sample.gt_soft_logits.valid.numpy()[0]
    label = sample.gt_sem_seg.data.numpy()[0]
    assert logits.shape == (K, ) + img.shape[1:] and valid.shape == img.shape[1:] and label.shape == valid.shape
    assert valid.dtype == bool and valid.mean() > 0.3
    # labelled soft pixels hold genuine logit vectors (channel k = channel 0 + 100 k), never a fill value
    for k in range(K):
        np.testing.assert_allclose(logits[k][valid], logits[0][valid] + 100. * k, atol=1e-3)
    assert np.all(logits[:, ~valid] == 0)  # unlabelled pixels are zeroed by the packing
    both = valid & (label != 255)
    if exact:
        np.testing.assert_array_equal(logits[0][both], label[both].astype(np.float32))
        # what the transform filled (label 255: cut-outs, paddings) carries no soft label either
        np.testing.assert_array_equal(valid, label != 255)
    else:
        assert np.mean(np.abs(logits[0][both] - label[both]) > 0.75) < 0.01  # a 1-pixel shift changes code >= 1
        if cfg['type'] == 'RandomRotate':  # fills labels with seg_pad_val = 255
            assert np.mean(valid != (label != 255)) < 0.01
        # (RandomRotFlip fills the hard labels with 0, i.e. class 0; the soft labels there become unlabelled)
        assert (~valid).sum() > 0.05 * valid.size  # the rotation's empty corners are unlabelled


def test_mmcv_pad_and_center_crop_are_refused_with_the_replacement_named(tmp_path):
    for t, replacement in (('Pad', 'PadSegFields'), ('CenterCrop', 'CenterCropSegFields')):
        cfg = dict(type=t, size=(70, 50)) if t == 'Pad' else dict(type=t, crop_size=(24, 18))
        out = TRANSFORMS.build(cfg)(_results())
        with pytest.raises(ValueError, match=replacement):
            TRANSFORMS.build(dict(type='PackSegInputsWithSoftLabels'))(out)


def test_mmseg_random_mosaic_cannot_hold_soft_labels():
    """Why DAKDDataset refuses RandomMosaic (SoftLabelMosaic is the soft-label mosaic)."""
    r = _results()
    r['mix_results'] = [_results(i) for i in (1, 2, 3)]
    with pytest.raises(ValueError):
        TRANSFORMS.build(dict(type='RandomMosaic', prob=1.0, img_scale=(H, W)))(r)


def test_soft_label_loading_layout(tmp_path):
    from projects.sar_oilspill.datasets.daug import write_daug_sample
    logits = np.random.default_rng(0).normal(size=(K, 6, 10)).astype(np.float32)
    write_daug_sample(str(tmp_path), 's000000', np.zeros((6, 10)), logits)
    r = dict(soft_logits_path=str(tmp_path / 'logits' / 's000000.npy'), img_shape=(6, 10))
    out = TRANSFORMS.build(dict(type='LoadSoftLabels'))(r)
    soft = out['gt_soft_logits']
    assert soft.shape == (6, 10, K + 1) and soft.dtype == np.float32
    np.testing.assert_allclose(soft[..., :K], logits.transpose(1, 2, 0), atol=1e-2)  # float16 on disk
    assert np.all(soft[..., K] == 1.0) and (out['gt_seg_map'] == 255).all()
    assert out['seg_fields'] == ['gt_soft_logits', 'gt_seg_map']


def test_epoch_resampled_dataset_draws_every_item_evenly():
    items = list(range(10))
    for length in (1, 3, 4, 10, 25):
        ds = EpochResampledDataset(items, length)
        assert len(ds) == length
        ranges = [ds.source_range(i) for i in range(length)]
        # the strata cover every item, in order, each about len/length (or 1) items
        covered = [j for r in ranges for j in r]
        if length <= 10:
            assert covered == items
        else:
            assert sorted(set(covered)) == items and max(covered.count(j) for j in items) <= -(-length // 10)
        np.random.seed(0)
        assert all(ds[i] in ranges[i] for i in range(length))
    with pytest.raises(IndexError):
        EpochResampledDataset(items, 3)[3]
    with pytest.raises(ValueError, match='length=0'):
        EpochResampledDataset(items, 0)


def _make_daug(root, n, h=32, w=48):
    from projects.sar_oilspill.datasets.daug import write_daug_manifest, write_daug_sample
    from projects.sar_oilspill.datasets.osd import OSDDataset
    rng = np.random.default_rng(0)
    for i in range(n):
        write_daug_sample(str(root), f's{i:06d}', rng.uniform(-1, 1, (h, w)), rng.normal(size=(5, h, w)))
    write_daug_manifest(str(root), dict(classes=list(OSDDataset.METAINFO['classes']), num_classes=5))
    return str(root)


@pytest.mark.parametrize('mosaic,uses,want', [(True, 1.0, 2), (True, 4.0, 8), (True, 0.5, 1), (False, 1.0, 8),
                                              (False, 2.0, 16), (2, 1.0, 2), (4, 16.0, 8), (4, 1.0, 1)])
def test_real_synthetic_mix_is_one_value(synthetic_osd, tmp_path, mosaic, uses, want):
    """``tile_uses_per_epoch``: 8 tiles -> 2 mosaics (each tile once), the former 8 with uses=4, etc."""
    root = _make_daug(tmp_path / 'daug', 8)
    real = dict(type='OSDDataset', data_root=synthetic_osd,
                data_prefix=dict(img_path='train/images', seg_map_path='train/labels_1D'),
                pipeline=[dict(type='LoadOilSpillImage'), dict(type='LoadOilSpillAnnotations'),
                          dict(type='PackSegInputs')])
    ds = DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(
        data_root=root, mosaic=mosaic, tile_uses_per_epoch=uses)))
    assert (ds.num_real, ds.num_synthetic, len(ds)) == (12, want, 12 + want)
    sample = ds[len(ds) - 1]['data_samples']
    n = 2 if mosaic is True else (mosaic or 1)
    assert sample.gt_soft_logits.data.shape == (5, 32 * n, 48 * n)
    for bad in (1, 0.5, 'yes'):
        with pytest.raises(ValueError, match=f'mosaic={bad!r}'):
            DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(data_root=root, mosaic=bad)))
    with pytest.raises(ValueError, match='tile_uses_per_epoch=0'):
        DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(data_root=root, tile_uses_per_epoch=0)))
    with pytest.raises(ValueError, match='PadSegFields'):
        DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(data_root=root), synthetic_pipeline=[
            dict(type='Pad', size=(64, 64)), dict(type='PackSegInputsWithSoftLabels')]))
