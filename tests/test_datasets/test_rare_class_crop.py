"""RareClassCrop: RandomCrop with nnU-Net's foreground oversampling (a share of the crops placed on rare classes)."""
import numpy as np
import pytest
from mmseg.datasets.transforms import RandomCrop

from projects.sar_oilspill.datasets.transforms import RareClassCrop


def _results(seg, channels=None):
    res = dict(img=np.arange(seg.size, dtype=np.float32).reshape(seg.shape), gt_seg_map=seg.copy(),
               seg_fields=['gt_seg_map'])
    if channels:
        res['gt_soft_logits'] = np.stack([seg.astype(np.float32) * (c + 1) for c in range(channels)], -1)
        res['seg_fields'].append('gt_soft_logits')
    return res


def test_prob_one_always_holds_the_rare_pixel_at_any_place_of_the_crop():
    seg = np.zeros((64, 64), np.uint8)
    seg[40, 9] = 3
    t = RareClassCrop(16, classes=(3, ), prob=1.0)
    np.random.seed(0)
    rows, cols = [], []
    for _ in range(400):
        out = t(_results(seg))
        assert out['gt_seg_map'].shape == (16, 16)
        (r, ), (c, ) = np.nonzero(out['gt_seg_map'] == 3)
        rows.append(r)
        cols.append(c)
    # uniform among the crops that hold the pixel: rows 0..15 in the crop (no edge in the way), cols 0..9 (the
    # pixel is 9 from the left edge); chi-square-free check: every position seen, none more than ~3x its share
    assert sorted(set(rows)) == list(range(16))
    assert sorted(set(cols)) == list(range(10))
    assert max(np.bincount(rows)) < 3 * 400 / 16
    assert max(np.bincount(cols)) < 3 * 400 / 10


def test_share_of_rare_crops_is_prob_plus_what_random_crops_catch():
    seg = np.zeros((256, 256), np.uint8)
    seg[5, 5] = 3  # a random 128 crop holds it when both offsets are <= 5: (6/129)^2
    t = RareClassCrop(128, classes=(3, ), prob=1 / 3)
    np.random.seed(1)
    n = 3000
    hits = sum(int((t(_results(seg))['gt_seg_map'] == 3).any()) for _ in range(n))
    expected = 1 / 3 + (2 / 3) * (6 / 129) ** 2
    assert abs(hits / n - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def test_prob_zero_and_absent_classes_cut_randomcrops_crops():
    rng = np.random.default_rng(0)
    seg = rng.integers(0, 3, (50, 70)).astype(np.uint8)  # no class 3
    for kwargs in (dict(prob=0.0), dict(prob=1.0)):
        np.random.seed(7)
        ours = [RareClassCrop((20, 30), classes=(3, ), cat_max_ratio=0.75, **kwargs)(_results(seg))['img']
                for _ in range(20)]
        np.random.seed(7)
        if kwargs['prob'] == 1.0:  # one np.random.rand() draw decides before falling back
            ref_t = RandomCrop((20, 30), cat_max_ratio=0.75)
            ref = []
            for _ in range(20):
                np.random.rand()
                ref.append(ref_t(_results(seg))['img'])
        else:
            ref = [RandomCrop((20, 30), cat_max_ratio=0.75)(_results(seg))['img'] for _ in range(20)]
        for a, b in zip(ours, ref):
            np.testing.assert_array_equal(a, b)


def test_every_seg_field_is_cut_with_the_image_and_crops_larger_than_the_map_keep_it_whole():
    seg = np.zeros((32, 32), np.uint8)
    seg[20:24, 3:5] = 3
    np.random.seed(3)
    out = RareClassCrop(8, classes=(3, 1), prob=1.0)(_results(seg, channels=2))
    assert (out['gt_seg_map'] == 3).any()
    np.testing.assert_array_equal(out['gt_soft_logits'][..., 1], out['gt_seg_map'].astype(np.float32) * 2)
    y, x = np.unravel_index(int(out['img'][0, 0]), seg.shape)  # the image value is its flat index
    np.testing.assert_array_equal(out['gt_seg_map'], seg[y:y + 8, x:x + 8])
    whole = RareClassCrop(64, classes=(3, ), prob=1.0)(_results(seg))
    np.testing.assert_array_equal(whole['gt_seg_map'], seg)


@pytest.mark.parametrize('kwargs, message', [(dict(classes=()), 'classes is empty'),
                                             (dict(classes=(3, ), prob=1.5), 'prob must be in'),
                                             (dict(classes=(255, )), 'holds ignore_index')])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RareClassCrop(16, **kwargs)


def test_built_from_a_config_dict():
    from mmseg.registry import TRANSFORMS
    t = TRANSFORMS.build(dict(type='RareClassCrop', crop_size=(16, 16), classes=[3], prob=0.5))
    assert isinstance(t, RareClassCrop) and t.classes == (3, ) and 'prob=0.5' in repr(t)
