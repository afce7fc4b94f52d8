import numpy as np
import pytest

from projects.sar_oilspill.datasets.synthetic import LAND, OIL, SEA, SHIP, make_sar_scene, write_synthetic_osd


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


def test_writer_reports_progress(tmp_path):
    calls = []
    write_synthetic_osd(str(tmp_path / 's'), 3, 2, 16, 16, seed=1,
                        progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    calls.clear()
    write_synthetic_osd(str(tmp_path / 's'), 3, 2, 16, 16, seed=1, progress=lambda done, total: calls.append(1))
    assert calls == []  # an existing set is reused, nothing is written
