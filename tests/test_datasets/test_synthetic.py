import cv2
import numpy as np
import pytest

from projects.sar_oilspill.datasets.synthetic import (GENERATOR_VERSION, LAND, OIL, SEA, SHIP, make_sar_scene,
                                                      write_synthetic_osd)


def test_deterministic_and_odd_sizes():
    a = make_sar_scene(7, 95, 27)
    b = make_sar_scene(7, 95, 27)
    c = make_sar_scene(8, 95, 27)
    assert a[0].shape == a[1].shape == (95, 27) and a[0].dtype == np.uint8
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match='at least 8x8'):
        make_sar_scene(0, 4, 100)


def test_classes_and_radiometry():
    seen = np.zeros(5, bool)
    oil_darker = []
    for seed in range(30):
        img, lab = make_sar_scene(seed, 128, 128)
        seen[np.unique(lab)] = True
        if (lab == OIL).sum() > 50:
            oil_darker.append(img[lab == OIL].mean() < img[lab == SEA].mean() - 20)
        if (lab == SHIP).any():
            assert img[lab == SHIP].mean() > img[lab == SEA].mean()
        if (lab == LAND).sum() > 100:
            assert img[lab == LAND].mean() > img[lab == SEA].mean()
    assert seen.all(), f'classes never drawn: {np.where(~seen)[0]}'
    assert np.mean(oil_darker) > 0.9


def test_ships_are_elongated_hulls_of_realistic_size():
    """Each ship is one connected bright hull, 8-24 px long and 3-5 px wide at its widest (a 80-240 m vessel at
    10 m pixels), measured from the label with OpenCV's minimum-area rectangle, not from the drawing code."""
    sizes = []
    for seed in range(40):
        img, lab = make_sar_scene(seed, 128, 128, p_land=0)
        n, comps = cv2.connectedComponents((lab == SHIP).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            ys, xs = np.nonzero(comps == i)
            if min(ys.min(), xs.min()) == 0 or ys.max() == lab.shape[0] - 1 or xs.max() == lab.shape[1] - 1:
                continue  # cut by the scene border
            (_, _), (w, h), _ = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
            sizes.append((max(w, h) + 1, min(w, h) + 1, len(xs)))
            assert np.median(img[comps == i]) > np.median(img[lab == SEA]) + 40  # +12 dB and more over the sea
    sizes = np.array(sizes)
    assert len(sizes) > 20
    # overlapping hulls merge into one component, so only the lower bounds and the typical size are strict
    assert sizes[:, 0].min() >= 6 and np.median(sizes[:, 0]) >= 12 and np.median(sizes[:, 0]) <= 22
    assert sizes[:, 1].min() >= 2 and np.median(sizes[:, 1]) <= 6
    assert np.median(sizes[:, 0] / sizes[:, 1]) >= 2.5  # elongated
    assert sizes[:, 2].min() >= 12  # no longer the 5-13 px discs of generator v1


def test_speckle_is_multiplicative_gamma():
    # Flat sea, no objects: intensity / local mean follows Gamma(L, 1/L), whose std is 1/sqrt(L).
    img, _ = make_sar_scene(1, 128, 128, looks=4.0, p_land=0, max_slicks=1, max_lookalikes=0, max_ships=0)
    db = img.astype(np.float64) / 255 * 40 - 25
    intensity = 10 ** (db / 10)
    ratio = intensity[:32, :32] / intensity[:32, :32].mean()
    assert 0.35 < ratio.std() < 0.65  # 1/sqrt(4) = 0.5, up to the slow backscatter trend


def test_writer_is_atomic_and_refuses_other_settings(tmp_path):
    root = str(tmp_path / 's')
    write_synthetic_osd(root, 2, 1, 16, 16, seed=1)
    write_synthetic_osd(root, 2, 1, 16, 16, seed=1)  # same settings: reused
    with pytest.raises(FileExistsError, match='overwrite'):
        write_synthetic_osd(root, 3, 1, 16, 16, seed=1)
    write_synthetic_osd(root, 3, 1, 16, 16, seed=1, overwrite=True)
    import os
    assert sorted(os.listdir(tmp_path)) == ['s']  # no temporary folder left behind
    assert len(os.listdir(os.path.join(root, 'train', 'images'))) == 3


def test_a_set_drawn_by_an_older_generator_is_redrawn(tmp_path):
    import json
    import os
    root = str(tmp_path / 's')
    write_synthetic_osd(root, 2, 1, 16, 16, seed=1)
    stamp = os.path.join(root, 'synthetic_settings.json')
    settings = json.load(open(stamp))
    assert settings['generator'] == GENERATOR_VERSION
    first = cv2.imread(os.path.join(root, 'train', 'images', 'img_0000.jpg'))
    with open(stamp, 'w') as f:
        json.dump(dict(settings, generator='make_sar_scene v1'), f)
    cv2.imwrite(os.path.join(root, 'train', 'images', 'img_0000.jpg'), np.zeros((16, 16, 3), np.uint8))
    write_synthetic_osd(root, 2, 1, 16, 16, seed=1)  # same settings, older generator: redrawn without overwrite
    assert json.load(open(stamp)) == settings
    np.testing.assert_array_equal(cv2.imread(os.path.join(root, 'train', 'images', 'img_0000.jpg')), first)
    with open(stamp, 'w') as f:
        json.dump(dict(settings, generator='make_sar_scene v1', seed=2), f)
    with pytest.raises(FileExistsError, match='overwrite'):  # other settings as well: still refused
        write_synthetic_osd(root, 2, 1, 16, 16, seed=1)


def test_writer_reports_progress(tmp_path):
    calls = []
    write_synthetic_osd(str(tmp_path / 's'), 3, 2, 16, 16, seed=1,
                        progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    calls.clear()
    write_synthetic_osd(str(tmp_path / 's'), 3, 2, 16, 16, seed=1, progress=lambda done, total: calls.append(1))
    assert calls == []  # an existing set is reused, nothing is written
