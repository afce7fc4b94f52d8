"""The D_aug folder format (DAugFolder) and the project's one atomic writer (utils/atomic.py)."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS

from projects.sar_oilspill.datasets import daug
from projects.sar_oilspill.datasets.daug import DAugFolder, read_daug_logits
from projects.sar_oilspill.utils import atomic

CLASSES = ['background', 'oil_spill']
SETTINGS = dict(classes=CLASSES, num_classes=2, balancing_factor=0.43, base_seed=0, num_inference_steps=3, eta=0.0,
                timestep_spacing='trailing', size=[6, 10], checkpoint='a.pth', checkpoint_sha256='ab' * 32,
                name_prefix='s')


def _logits(i, k=2, h=6, w=10):
    rng = np.random.default_rng(i)
    return rng.normal(size=(k, h, w)).astype(np.float32)


def _folder(tmp_path, n=3, manifest=True) -> DAugFolder:
    folder = DAugFolder(str(tmp_path / 'daug'))
    for i in range(n):
        folder.write_sample(folder.sample_name(i), np.full((6, 10), -1.0 + 0.5 * i), _logits(i))
    if manifest:
        folder.write_manifest(dict(SETTINGS, num_samples=n, complete=True,
                                   samples=[dict(name=folder.sample_name(i), index=i) for i in range(n)]))
    return folder


def _entries(folder: DAugFolder):
    return sorted(os.listdir(folder.image_dir) + os.listdir(folder.logit_dir))


# ------------------------------------------------------------------------------------------------- layout
def test_layout_names_and_round_trip(tmp_path):
    folder = _folder(tmp_path, n=2)
    root = folder.root
    assert folder.manifest_path == osp.join(root, 'manifest.json')
    assert folder.image_path('s000001') == osp.join(root, 'images', 's000001.png')
    assert folder.logits_path('s000001') == osp.join(root, 'logits', 's000001.npy')
    assert DAugFolder.sample_name(123) == 's000123' and DAugFolder.sample_name(5, 'x') == 'x000005'
    assert DAugFolder.sample_index('s000123') == 123 and DAugFolder.sample_index('t000001') is None
    assert DAugFolder.sample_index('s0001a') is None
    # image [-1, 1] -> uint8, logits -> float16, label = argmax
    img = folder.read_image('s000001')
    assert img.dtype == np.uint8 and img.shape == (6, 10) and (img == 64).all()  # (-0.5 + 1) * 127.5 rounded
    lg = folder.read_logits('s000001', num_classes=2)
    assert lg.dtype == np.float16 and lg.shape == (2, 6, 10)
    np.testing.assert_allclose(lg.astype(np.float32), _logits(1), atol=1e-2)
    np.testing.assert_array_equal(folder.read_label('s000001'), lg.astype(np.float32).argmax(0))
    # a uint8 image is stored as is
    folder.write_sample('u000000', np.arange(60, dtype=np.uint8).reshape(6, 10), _logits(0))
    np.testing.assert_array_equal(folder.read_image('u000000'), np.arange(60).reshape(6, 10))
    # nothing temporary is left behind
    assert not [e for e in _entries(folder) if atomic.is_temporary(e)]
    with pytest.raises(ValueError, match=r'do not match'):
        folder.write_sample('bad', np.zeros((6, 10)), np.zeros((2, 6, 9)))


def test_old_api_writes_the_same_folder(tmp_path):
    root = str(tmp_path / 'd')
    daug.write_daug_sample(root, 's000000', np.zeros((6, 10)), _logits(0))
    daug.write_daug_manifest(root, dict(classes=CLASSES, num_classes=2))
    assert daug.daug_sample_exists(root, 's000000') and not daug.daug_sample_exists(root, 's000001')
    manifest = DAugFolder(root).read_manifest(CLASSES)
    assert manifest['format'] == daug.DAUG_FORMAT == 'sar_oilspill.daug/1'
    # the earlier homes of the atomic writer are the one helper
    from projects.sar_oilspill.utils import cli
    assert daug.atomic_write is atomic.atomic_write and cli.write_json_atomic is atomic.write_json_atomic


# ------------------------------------------------------------------------------------------------- listing
def test_listing_ignores_incomplete_and_temporary_files(tmp_path):
    folder = _folder(tmp_path, n=3, manifest=False)
    # image without logits, logits without image, temporaries of a killed writer, a foreign file
    folder.write_sample('s000003', np.zeros((6, 10)), _logits(3))
    os.remove(folder.logits_path('s000003'))
    folder.write_sample('s000004', np.zeros((6, 10)), _logits(4))
    os.remove(folder.image_path('s000004'))
    for name in ('s000005.png.tmp-999', 's000006.png.tmp-12.png', 'notes.txt'):
        open(osp.join(folder.image_dir, name), 'wb').close()
    open(osp.join(folder.logit_dir, 's000005.npy.tmp-999'), 'wb').close()
    assert folder.image_names() == ['s000000', 's000001', 's000002', 's000003']
    assert folder.complete_names() == ['s000000', 's000001', 's000002']
    assert folder.missing(['s000002', 's000003', 's000004']) == ['s000003', 's000004']
    assert folder.unlisted_names('s', 2) == ['s000002', 's000003']
    # a hand-written manifest (no sample list): every complete pair
    folder.write_manifest(dict(classes=CLASSES, num_classes=2))
    assert folder.sample_names() == ['s000000', 's000001', 's000002']
    # an unfinished generation: the complete ones of its first num_samples, with a warning
    folder.write_manifest(dict(SETTINGS, num_samples=5, complete=False))
    with pytest.warns(UserWarning, match='unfinished generation'):
        assert folder.sample_names() == ['s000000', 's000001', 's000002']
    # a listed sample that lacks a file is an error naming it
    folder.write_manifest(dict(SETTINGS, samples=[dict(name='s000000'), dict(name='s000003')]))
    with pytest.raises(FileNotFoundError, match="s000003"):
        folder.sample_names()
    # the dataset reads through the same listing
    folder.write_manifest(dict(SETTINGS, samples=[dict(name='s000000'), dict(name='s000002')]))
    with pytest.warns(UserWarning, match='2 image files not listed'):
        ds = DATASETS.build(dict(type='DAugDataset', data_root=folder.root, metainfo=dict(classes=CLASSES),
                                 pipeline=[]))
    assert [d['soft_logits_path'] for d in ds.load_data_list()] == [folder.logits_path('s000000'),
                                                                   folder.logits_path('s000002')]


def test_empty_or_missing_folder_errors_name_it(tmp_path):
    folder = DAugFolder(str(tmp_path / 'none'))
    with pytest.raises(FileNotFoundError, match=r"not a D_aug folder.*none.*images/<name>\.png"):
        folder.check_layout()
    empty = _folder(tmp_path, n=0, manifest=False)
    empty.write_manifest(dict(classes=CLASSES, num_classes=2))
    with pytest.raises(FileNotFoundError, match='no complete image/logit pairs'):
        empty.sample_names()
    with pytest.raises(ValueError, match='layout is fixed'):
        DATASETS.build(dict(type='DAugDataset', data_root=empty.root, img_suffix='.jpg', pipeline=[]))


# ------------------------------------------------------------------------------------------------- reading
def test_read_logits_errors_name_the_file(tmp_path):
    p = str(tmp_path / 'x.npy')
    np.save(p, np.zeros((2, 3), np.float16))
    with pytest.raises(ValueError, match=r'x\.npy: expected \(K=None, H, W\)'):
        read_daug_logits(p)
    np.save(p, np.zeros((3, 2, 2), np.float16))
    with pytest.raises(ValueError, match=r'x\.npy: expected \(K=2, H, W\) logits, got shape \(3, 2, 2\)'):
        read_daug_logits(p, 2)
    np.save(p, np.full((2, 2, 2), np.nan, np.float16))
    with pytest.raises(ValueError, match=r'x\.npy: soft labels contain NaN'):
        read_daug_logits(p)
    with open(p, 'wb') as f:
        f.write(b'not numpy')
    with pytest.raises(OSError, match=r'x\.npy: unreadable soft labels'):
        read_daug_logits(p)
    folder = _folder(tmp_path, n=1)
    with open(folder.image_path('s000000'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n truncated')
    with pytest.raises(OSError, match=r's000000\.png'):
        folder.read_image('s000000')


# ------------------------------------------------------------------------------------------------- manifest
def test_manifest_round_trip_and_errors_name_file_and_field(tmp_path):
    folder = _folder(tmp_path, n=1)
    m = folder.read_manifest(CLASSES)
    assert m['format'] == daug.DAUG_FORMAT and m['samples'] == [dict(name='s000000', index=0)]
    assert json.load(open(folder.manifest_path)) == m
    copy = DAugFolder(str(tmp_path / 'copy'))  # a manifest read from one folder is written to another as it is
    copy.write_manifest(folder.read_manifest())
    assert copy.read_manifest(CLASSES) == m
    with pytest.raises(ValueError, match="format 'other/2', this folder writes"):
        copy.write_manifest(dict(m, format='other/2'))
    with pytest.raises(ValueError, match=r"manifest\.json: generated for classes \('background', 'oil_spill'\)"):
        folder.read_manifest(['a', 'b'])
    with pytest.raises(ValueError, match="needs 'num_classes'"):
        folder.write_manifest(dict(classes=CLASSES))
    for text, match in (('{"format": "sar_oilspill.daug/1", "classes": ["a"]}', "manifest.json: no 'num_classes'"),
                        ('{"format": "other/2"}', "manifest.json: format 'other/2'"),
                        ('[1, 2]', "manifest.json: format 'list'"),
                        ('{"format": ', r'manifest\.json is not a readable D_aug manifest')):
        with open(folder.manifest_path, 'w') as f:
            f.write(text)
        with pytest.raises(ValueError, match=match):
            folder.read_manifest()
    os.remove(folder.manifest_path)
    with pytest.raises(FileNotFoundError, match=r'manifest\.json not found'):
        folder.read_manifest()


def test_check_settings_names_every_differing_field(tmp_path):
    folder = DAugFolder(str(tmp_path / 'd'))
    folder.check_settings(SETTINGS)  # no manifest yet: anything goes
    folder.write_manifest(dict(SETTINGS, complete=False))
    folder.check_settings(dict(SETTINGS))
    # the same checkpoint bytes at another path are the same model
    folder.check_settings(dict(SETTINGS, checkpoint='elsewhere/copy.pth'))
    with pytest.raises(ValueError) as e:
        folder.check_settings(dict(SETTINGS, eta=0.5, size=[8, 8]))
    msg = str(e.value)
    assert 'eta: existing 0.0, now 0.5' in msg and 'size: existing [6, 10], now [8, 8]' in msg
    assert 'other settings' in msg and folder.root in msg and 'base_seed' not in msg
    with pytest.raises(ValueError, match=r"checkpoint: existing 'a\.pth' \(SHA-256 abab.*now 'a\.pth' \(SHA-256 cd"):
        folder.check_settings(dict(SETTINGS, checkpoint_sha256='cd' * 32))
    with open(folder.manifest_path, 'w') as f:
        f.write('{')
    with pytest.raises(ValueError, match='not a readable D_aug manifest.*use another out_dir'):
        folder.check_settings(SETTINGS)


# ------------------------------------------------------------------------------------------------- atomic writes
def test_torn_sample_writes_are_never_visible(tmp_path, monkeypatch):
    folder = _folder(tmp_path, n=1)
    before = folder.read_logits('s000000').copy()
    seen = []
    real_save = np.save

    def crash_mid_write(f, arr, *a, **k):
        f.write(b'\x93NUMPY partial')  # half a file under the temporary name ...
        f.flush()
        seen.append((folder.complete_names(), folder.has_sample('s000001'),
                     [e for e in os.listdir(folder.logit_dir) if atomic.is_temporary(e)]))
        raise RuntimeError('killed')  # ... and the writer dies

    monkeypatch.setattr(np, 'save', crash_mid_write)
    for name in ('s000001', 's000000'):  # a new sample, and one overwritten
        with pytest.raises(RuntimeError, match='killed'):
            folder.write_sample(name, np.zeros((6, 10)), _logits(9))
    monkeypatch.setattr(np, 'save', real_save)
    # while the half file existed, no listing showed the sample; only its temporary name existed
    assert seen[0][0] == ['s000000'] and seen[0][1] is False and len(seen[0][2]) == 1
    assert folder.complete_names() == ['s000000'] and not folder.has_sample('s000001')
    np.testing.assert_array_equal(folder.read_logits('s000000'), before)  # the old file, whole
    assert not [e for e in _entries(folder) if atomic.is_temporary(e)]


def test_atomic_write_fsyncs_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = str(tmp_path / 'sub' / 'r.json')
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, 'fsync', lambda fd: (synced.append(fd), real_fsync(fd)))
    assert atomic.write_json_atomic(dict(a=1), path) == path
    assert json.load(open(path)) == dict(a=1) and len(synced) >= 2  # the file and its folder
    with pytest.raises(TypeError):
        atomic.write_json_atomic(dict(a=object()), path)  # not serialisable: nothing written
    assert json.load(open(path)) == dict(a=1)

    def half(tmp):
        with open(tmp, 'w') as f:
            f.write('{"a": 2')
        assert json.load(open(path)) == dict(a=1)  # the reader still sees the old file
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        atomic.atomic_write(path, half)
    assert json.load(open(path)) == dict(a=1) and os.listdir(osp.dirname(path)) == ['r.json']
    with pytest.raises(OSError, match='nothing was written'):
        atomic.atomic_write(path, lambda tmp: None)
    # keep_suffix: the temporary name ends with the extension (cv2.imwrite picks the format from it)
    names = []
    atomic.atomic_write(str(tmp_path / 'g.png'), lambda tmp: (names.append(tmp), open(tmp, 'wb').close()))
    assert names[0].endswith('.png.tmp-%d' % os.getpid())
    atomic.atomic_write(str(tmp_path / 'g.png'), lambda tmp: (names.append(tmp), open(tmp, 'wb').close()),
                        keep_suffix=True)
    assert names[1].endswith('.tmp-%d.png' % os.getpid()) and atomic.is_temporary(names[1])


def test_json_safe_gives_strict_json(tmp_path):
    from projects.sar_oilspill.utils.atomic import json_safe, write_json_atomic
    obj = dict(a=float('nan'), b=[np.float32(0.5), np.int64(3), (float('inf'), 'x')], c=dict(d=np.float64(-2.0)))
    safe = json_safe(obj)
    assert safe == dict(a=None, b=[0.5, 3, [None, 'x']], c=dict(d=-2.0))
    assert type(safe['b'][1]) is int and type(safe['b'][0]) is float
    path = write_json_atomic(safe, str(tmp_path / 'r.json'))
    assert json.loads(open(path).read(), parse_constant=lambda c: pytest.fail(f'non-strict JSON {c}')) == safe
