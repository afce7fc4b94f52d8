"""D_aug loading and the 2x2 soft-label mosaic: geometry of image, hard and soft labels through transforms."""
import json
import os

import numpy as np
import pytest
import torch
from mmseg.registry import DATASETS

from projects.sar_oilspill.datasets.daug import write_daug_manifest, write_daug_sample
from projects.sar_oilspill.datasets.osd import OSDDataset

META = dict(classes=OSDDataset.METAINFO['classes'], palette=OSDDataset.METAINFO['palette'])


def _make_daug(root, n=4, h=6, w=10, k=5):
    rng = np.random.default_rng(0)
    for i in range(n):
        image = np.full((h, w), -1.0 + 0.5 * i)  # tile i has grey level 63.75*i (after [-1,1] -> [0,255])
        logits = rng.normal(size=(k, h, w))
        logits[i % k] += 10.0  # tile i is confidently class i % k everywhere
        logits[:, 0, 0] += 20.0 * np.arange(k)  # a marker at each tile's top-left corner
        write_daug_sample(str(root), f's{i:06d}', image, logits)
    write_daug_manifest(str(root), dict(classes=list(META['classes']), num_classes=k))
    return root


def _mix_dataset(root, label_mode='soft', extra=(), grid=2):
    inner = dict(type='DAugDataset', data_root=str(root), metainfo=META,
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadSoftLabels', label_mode=label_mode)])
    return DATASETS.build(dict(type='MultiImageMixDataset', dataset=inner,
                               pipeline=[dict(type='SoftLabelMosaic', grid=grid), *extra,
                                         dict(type='PackSegInputsWithSoftLabels')]))


def test_soft_labels_loaded_and_files_complete(tmp_path):
    root = _make_daug(tmp_path / 'daug')
    # a half-written sample (image without logits) is not a sample
    write_daug_sample(str(root), 's000009', np.zeros((6, 10)), np.zeros((5, 6, 10)))
    os.remove(root / 'logits' / 's000009.npy')
    assert not [p for p in os.listdir(root / 'images') if 'tmp' in p]
    ds = DATASETS.build(dict(type='DAugDataset', data_root=str(root), metainfo=META,
                             pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadSoftLabels'),
                                       dict(type='PackSegInputsWithSoftLabels')]))
    assert len(ds) == 4
    s = ds[2]['data_samples']
    assert s.gt_soft_logits.data.shape == (5, 6, 10)
    assert (s.gt_soft_logits.data.argmax(0)[1:] == 2).all()  # row 0 holds the corner marker
    assert (s.gt_sem_seg.data == 255).all()  # no hard label in soft mode
    assert ds[2]['inputs'][0, 0, 0] == 128  # (-1 + 1.0 + 1) * 127.5 rounded


def test_hard_label_mode_and_max_samples(tmp_path):
    root = _make_daug(tmp_path / 'daug')
    ds = DATASETS.build(dict(type='DAugDataset', data_root=str(root), metainfo=META, max_samples=3,
                             pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadSoftLabels', label_mode='hard'),
                                       dict(type='PackSegInputsWithSoftLabels')]))
    assert len(ds) == 3
    s = ds[1]['data_samples']
    assert 'gt_soft_logits' not in s and (s.gt_sem_seg.data[0, 1:] == 1).all()
    assert s.gt_sem_seg.data[0, 0, 0] == 4  # argmax of the corner marker
    with pytest.raises(ValueError, match='max_samples=9'):
        DATASETS.build(dict(type='DAugDataset', data_root=str(root), metainfo=META, max_samples=9))


def _tile_mask(i, h=6, w=10):
    """Label mask of tile i: column i of the tile (and nothing else) unlabelled."""
    mask = np.ones((h, w), bool)
    mask[:, i] = False
    return mask


def test_label_masks_reach_the_packed_sample_through_the_mosaic(tmp_path):
    """A masked D_aug (label_mask: true, valid/<name>.png): the validity channel is 0 exactly at each tile's unlabelled
    pixels, wherever the mosaic puts the tile; in hard mode those pixels are ignore (255); without the manifest flag
    the masks are not read."""
    from projects.sar_oilspill.datasets.daug import DAugFolder
    root = _make_daug(tmp_path / 'daug')
    folder = DAugFolder(str(root))
    for i in range(4):  # rewrite each sample with a mask (same image and logits)
        name = folder.sample_name(i)
        folder.write_sample(name, folder.read_image(name), folder.read_logits(name).astype(np.float32),
                            _tile_mask(i))
    manifest = folder.read_manifest()
    write_daug_manifest(str(root), dict(manifest, label_mask=True))
    np.testing.assert_array_equal(folder.read_valid('s000002'), _tile_mask(2))
    np.random.seed(0)
    out = _mix_dataset(root)[0]
    valid = out['data_samples'].gt_soft_logits.valid[0].numpy()
    tiles = _quadrant_tiles(out)
    for r in range(2):
        for c in range(2):
            np.testing.assert_array_equal(valid[r * 6:(r + 1) * 6, c * 10:(c + 1) * 10], _tile_mask(tiles[r][c]))
    hard = DATASETS.build(dict(type='DAugDataset', data_root=str(root), metainfo=META,
                               pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadSoftLabels', label_mode='hard'),
                                         dict(type='PackSegInputsWithSoftLabels')]))
    seg = hard[3]['data_samples'].gt_sem_seg.data[0].numpy()
    assert (seg[:, 3] == 255).all() and (seg[1:, [0, 1, 2, 4]] == 3).all()  # tile 3 is class 3 where labelled

    # the manifest decides: without label_mask the same files give every pixel a label
    write_daug_manifest(str(root), manifest)
    np.random.seed(0)
    assert (_mix_dataset(root)[0]['data_samples'].gt_soft_logits.valid == 1).all()

    # a missing or misshapen mask of a masked D_aug is named
    write_daug_manifest(str(root), dict(manifest, label_mask=True))
    ds = DATASETS.build(dict(type='DAugDataset', data_root=str(root), metainfo=META,
                             pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadSoftLabels')]))
    os.remove(folder.valid_path('s000001'))
    with pytest.raises(OSError, match='s000001.png'):
        ds[1]
    folder.write_sample('s000001', folder.read_image('s000001'), folder.read_logits('s000001'),
                        np.ones((6, 10), bool))
    import cv2
    cv2.imwrite(folder.valid_path('s000002'), np.full((5, 10), 255, np.uint8))
    with pytest.raises(ValueError, match=r's000002.png: label mask of shape \(5, 10\)'):
        ds[2]
    with pytest.raises(ValueError, match='label mask'):
        folder.write_sample('s000005', np.zeros((6, 10)), np.zeros((5, 6, 10)), np.ones((6, 9), bool))


def test_manifest_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match='manifest.json'):
        DATASETS.build(dict(type='DAugDataset', data_root=str(tmp_path), metainfo=META))
    root = _make_daug(tmp_path / 'd2')
    with pytest.raises(ValueError, match='generated for classes'):
        DATASETS.build(dict(type='DAugDataset', data_root=str(root), metainfo=dict(classes=('a', 'b'))))


def _quadrant_tiles(sample, n=2):
    """Tile index of each cell of an n x n mosaic read back from the packed soft labels (class of tile i is i % 5)."""
    soft = sample['data_samples'].gt_soft_logits.data
    h, w = soft.shape[1] // n, soft.shape[2] // n
    return [[int(soft[:, r * h:(r + 1) * h, c * w:(c + 1) * w].mean((1, 2)).argmax()) for c in range(n)]
            for r in range(n)]


def test_mosaic_geometry_image_and_soft_labels_aligned(tmp_path):
    root = _make_daug(tmp_path / 'daug')
    np.random.seed(0)
    ds = _mix_dataset(root)
    out = ds[0]
    img = out['inputs']
    assert img.shape == (3, 12, 20)
    soft = out['data_samples'].gt_soft_logits.data
    assert soft.shape == (5, 12, 20)
    q = _quadrant_tiles(out)
    assert q[0][0] == 0  # the loaded sample is top-left
    for r in range(2):
        for c in range(2):
            tile = q[r][c]
            quad_img = img[0, r * 6:(r + 1) * 6, c * 10:(c + 1) * 10].float()
            assert torch.allclose(quad_img, torch.full_like(quad_img, round(63.75 * tile)), atol=1)
            # the corner marker (logits + arange(K)) sits at each tile's own top-left pixel
            corner = soft[:, r * 6, c * 10] - soft[:, r * 6 + 1, c * 10 + 1]
            assert corner.argmax() == 4


def test_mosaic_4x4_places_every_tile_in_row_major_order(tmp_path):
    """grid=4 (sixteen 64 tiles -> one 256 input): the tiles drawn by get_indices fill the cells row by row."""
    root = _make_daug(tmp_path / 'daug', n=5)
    np.random.seed(3)
    ds = _mix_dataset(root, grid=4)
    np.random.seed(3)
    drawn = ds.pipeline[0].get_indices(ds.dataset)  # what MultiImageMixDataset draws for item 2
    assert len(drawn) == 15
    np.random.seed(3)
    out = ds[2]
    img = out['inputs'][0].float()
    soft = out['data_samples'].gt_soft_logits.data
    assert img.shape == (24, 40) and soft.shape == (5, 24, 40)
    tiles = [2] + drawn
    q = _quadrant_tiles(out, 4)
    assert q == [[tiles[r * 4 + c] % 5 for c in range(4)] for r in range(4)]
    for r in range(4):
        for c in range(4):
            cell = img[r * 6:(r + 1) * 6, c * 10:(c + 1) * 10]
            assert torch.allclose(cell, torch.full_like(cell, round(63.75 * tiles[r * 4 + c])), atol=1)
            assert (soft[:, r * 6, c * 10] - soft[:, r * 6 + 1, c * 10 + 1]).argmax() == 4  # corner markers
    from projects.sar_oilspill.datasets.transforms import SoftLabelMosaic
    for bad in (1, 2.0, True):
        with pytest.raises(ValueError, match='grid='):
            SoftLabelMosaic(grid=bad)
    base = dict(img=np.zeros((4, 4, 3)), seg_fields=[])
    with pytest.raises(ValueError, match='with 15 tiles, got 3'):
        SoftLabelMosaic(grid=4)(dict(base, mix_results=[base] * 3))


def test_mosaic_then_flip_keeps_alignment(tmp_path):
    root = _make_daug(tmp_path / 'daug')
    ds = _mix_dataset(root, extra=[dict(type='RandomFlip', prob=1.0, direction='horizontal'),
                                   dict(type='RandomFlip', prob=1.0, direction='vertical')])
    np.random.seed(1)
    out = ds[0]
    img = out['inputs'][0].float()
    soft = out['data_samples'].gt_soft_logits.data
    q = _quadrant_tiles(out)
    assert q[1][1] == 0  # both flips move the loaded tile to bottom-right
    for r in range(2):
        for c in range(2):
            quad = img[r * 6:(r + 1) * 6, c * 10:(c + 1) * 10]
            assert torch.allclose(quad, torch.full_like(quad, round(63.75 * q[r][c])), atol=1)
            # marker now at each tile's bottom-right pixel
            assert (soft[:, (r + 1) * 6 - 1, (c + 1) * 10 - 1] - soft[:, r * 6 + 1, c * 10 + 1]).argmax() == 4


def test_mosaic_rejects_mixed_tiles():
    from projects.sar_oilspill.datasets.transforms import SoftLabelMosaic
    t = SoftLabelMosaic()
    base = dict(img=np.zeros((4, 4, 3)), seg_fields=['gt_seg_map'], gt_seg_map=np.zeros((4, 4)))
    other = dict(img=np.zeros((5, 4, 3)), seg_fields=['gt_seg_map'], gt_seg_map=np.zeros((5, 4)), img_path='x.png')
    with pytest.raises(ValueError, match='x.png'):
        t(dict(base, mix_results=[other, other, other]))
    with pytest.raises(ValueError, match='MultiImageMixDataset'):
        t(dict(base))
    json.dumps(repr(t))


def test_dakd_dataset_combines_real_hard_and_synthetic_soft(synthetic_osd, tmp_path):
    root = _make_daug(tmp_path / 'daug', h=32, w=48)
    real = dict(type='OSDDataset', data_root=synthetic_osd,
                data_prefix=dict(img_path='train/images', seg_map_path='train/labels_1D'),
                pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadOilSpillAnnotations'),
                          dict(type='PackSegInputs')])
    ds = DATASETS.build(dict(type='DAKDDataset', real=real,
                             synthetic=dict(data_root=str(root), mosaic=True, max_samples=3,
                                            tile_uses_per_epoch=4.0)))  # one mosaic per tile
    assert len(ds) == 12 + 3
    real_sample, syn_sample = ds[0]['data_samples'], ds[12]['data_samples']
    assert 'gt_soft_logits' not in real_sample and real_sample.gt_sem_seg.data.max() < 5
    assert syn_sample.gt_soft_logits.data.shape == (5, 64, 96)  # 2x2 mosaic of 32x48 tiles
    assert (syn_sample.gt_sem_seg.data == 255).all()
    hard = DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(data_root=str(root),
                                                                            label_mode='hard')))
    s = hard[12]['data_samples']
    assert 'gt_soft_logits' not in s and s.gt_sem_seg.data.shape == (1, 32, 48)
    with pytest.raises(ValueError, match='expected keys'):
        DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(data_root=str(root), mosaics=True)))
    with pytest.raises(ValueError, match='PackSegInputsWithSoftLabels'):
        DATASETS.build(dict(type='DAKDDataset', real=real, synthetic=dict(data_root=str(root)),
                            synthetic_pipeline=[dict(type='PackSegInputs')]))
