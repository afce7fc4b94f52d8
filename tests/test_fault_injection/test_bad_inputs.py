"""Bad input files are accepted or refused alike, by name, by the checker, training, the b tool and inference.

Also: D_aug generation compares checkpoints by content, and a D_aug dataset reads what its manifest lists.
"""
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import warnings

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS

from projects.sar_oilspill.datasets.check import check_dataset
from projects.sar_oilspill.datasets.image_io import ImageReadError, read_image, read_label

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
SOS_CFG = 'configs/_base_/datasets/sos_alos.py'
B_CFG = 'configs/sar_jointnet/sos_alos.py'
INFER_CFG = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
H = W = 32


def _load_tool(rel: str, name: str):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_b_tool = _load_tool('tools/compute_balancing_factor.py', 'b_tool_bad_inputs')
_infer_tool = _load_tool('tools/inference.py', 'infer_tool_bad_inputs')


def _tile(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = cv2.GaussianBlur(rng.integers(0, 256, (H, W)).astype(np.uint8), (5, 5), 0)
    return np.dstack([grey] * 3)  # SOS: JPEG with three equal channels


def _mask(seed: int, high: int = 255) -> np.ndarray:
    m = np.zeros((H, W, 3), np.uint8)
    m[4 + seed % 8:20, 6:24] = high
    return m


def _encode(ext: str, array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, array)
    assert ok
    return buf.tobytes()


def _sos_root(tmp_path, n: int = 3, mask_high: int = 255) -> str:
    """``<root>/train/palsar/<id>_sat.jpg`` + ``<id>_mask.png``, SOS's training layout."""
    root = str(tmp_path / 'sos')
    folder = osp.join(root, 'train', 'palsar')
    os.makedirs(folder)
    for i in range(n):
        cv2.imwrite(osp.join(folder, f'{i}_sat.jpg'), _tile(i))
        cv2.imwrite(osp.join(folder, f'{i}_mask.png'), _mask(i, mask_high))
    return root


# the faults: which file of pair 1 is replaced, and by what bytes
FAULTS = {
    'truncated_jpeg': ('1_sat.jpg', lambda: _encode('.jpg', _tile(1))[:-200]),
    'empty_jpeg': ('1_sat.jpg', lambda: b''),
    'truncated_png_mask': ('1_mask.png', lambda: _encode('.png', _mask(1))[:-30]),
    'empty_png_mask': ('1_mask.png', lambda: b''),
}


def _inject(root: str, fault: str) -> str:
    name, data = FAULTS[fault]
    path = osp.join(root, 'train', 'palsar', name)
    with open(path, 'wb') as f:
        f.write(data())
    return path


def _dataset(root: str, check_files: bool = True):
    """The config's training dataset on all tiles of ``root`` (no validation part carved out of 3 tiles)."""
    cfg = Config.fromfile(osp.join(ROOT, SOS_CFG))
    ds = dict(cfg.train_dataloader.dataset, data_root=root, check_files=check_files, split=None)
    if not check_files:
        ds['pipeline'] = []
    return DATASETS.build(ds)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(INFER_CFG).model)
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    from projects.sar_oilspill.datasets import OSDDataset
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(OSDDataset.METAINFO))), path)
    return path


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # configs are given relative to the repository, as on the command line


def test_good_files_read_as_before(tmp_path):
    img, mask = _tile(0), _mask(0)
    img[5, 7] = (10, 200, 90)  # channels differ somewhere: BGR order matters
    for ext in ('.jpg', '.png'):
        p = str(tmp_path / f'a{ext}')
        cv2.imwrite(p, img)
        data = open(p, 'rb').read()
        expected = cv2.imread(p, cv2.IMREAD_COLOR)
        assert np.array_equal(read_image(p), expected)
        assert np.array_equal(read_image(p), mmcv.imfrombytes(data, 'color', backend='cv2'))
        assert np.array_equal(read_image(p, 'grayscale'), cv2.imread(p, cv2.IMREAD_GRAYSCALE))
        assert np.array_equal(read_image(p, channel_order='rgb'), expected[..., ::-1])
    p = str(tmp_path / 'm.png')
    cv2.imwrite(p, mask)
    assert np.array_equal(read_label(p), cv2.imread(p, cv2.IMREAD_UNCHANGED)[..., ::-1])
    cv2.imwrite(p, mask[..., 0])
    assert np.array_equal(read_label(p), mask[..., 0])
    # trailing bytes after a complete JPEG are not truncation
    with open(str(tmp_path / 'a.jpg'), 'ab') as f:
        f.write(b'\0' * 16)
    assert np.array_equal(read_image(str(tmp_path / 'a.jpg')), cv2.imread(str(tmp_path / 'a.jpg')))


def test_good_dataset_accepted_by_all(tmp_path, checkpoint):
    root = _sos_root(tmp_path)
    rep = check_dataset(_dataset(root, check_files=False))
    assert rep['num_problems'] == 0 and not rep['warnings'] and rep['class_pixels']['oil_spill'] > 0
    ds = _dataset(root)
    sample = ds[1]
    assert tuple(sample['inputs'].shape) == (3, H, W)
    value = _b_tool.main([B_CFG, '--num-workers', '0', '--out', str(tmp_path / 'b.json'), '--cfg-options',
                          f'train_dataloader.dataset.data_root={root}', 'train_dataloader.dataset.split=None'])
    assert 0 < value < 10
    out = str(tmp_path / 'infer')
    img = osp.join(root, 'train', 'palsar', '1_sat.jpg')
    summary = _infer_tool.main([INFER_CFG, checkpoint, img, '--out-dir', out])
    assert summary['images']['1_sat']['height'] == H
    overlay = cv2.imread(osp.join(out, 'overlays', '1_sat.png'))
    assert overlay.shape == (H, W, 3)


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_bad_file_refused_by_all_naming_it(tmp_path, checkpoint, fault):
    root = _sos_root(tmp_path)
    bad = _inject(root, fault)
    name = osp.basename(bad)
    kind = 'empty file' if 'empty' in fault else 'truncated'

    # the one reader
    reader = read_label if name.endswith('_mask.png') else read_image
    with pytest.raises(ImageReadError, match=name) as e:
        reader(bad)
    assert kind in str(e.value)

    # the checker: one problem, naming the file
    rep = check_dataset(_dataset(root, check_files=False))
    assert rep['num_problems'] == 1, rep['problems']
    assert name in rep['problems'][0] and kind in rep['problems'][0] and 'unreadable' in rep['problems'][0]

    # training (the config's pipeline): the good samples load, the bad one is refused by name
    ds = _dataset(root)
    ds[0]
    with pytest.raises(ImageReadError, match=name):
        ds[1]

    # the balancing-factor tool
    with pytest.raises(SystemExit, match=name):
        _b_tool.main([B_CFG, '--num-workers', '0', '--out', str(tmp_path / 'b.json'), '--cfg-options',
                      f'train_dataloader.dataset.data_root={root}', 'train_dataloader.dataset.split=None'])

    # inference on the same bytes
    with pytest.raises(SystemExit, match=name) as e:
        _infer_tool.main([INFER_CFG, checkpoint, bad, '--out-dir', str(tmp_path / 'infer')])
    assert kind in str(e.value.code)


def test_undecodable_and_missing_files(tmp_path):
    p = tmp_path / 'x_sat.jpg'
    p.write_bytes(b'\xff\xd8\xff\xe0 this is not really a jpeg \xff\xda\x00\x01\xff\xd9')
    with pytest.raises(ImageReadError, match='x_sat.jpg: unreadable image: not decodable'):
        read_image(str(p))
    with pytest.raises(ImageReadError, match='nowhere.png: unreadable image: file does not exist'):
        read_image(str(tmp_path / 'nowhere.png'))
    p2 = str(tmp_path / 'rgba.png')
    cv2.imwrite(p2, np.dstack([np.full((4, 4), v, np.uint8) for v in (1, 2, 3, 255)]))  # BGRA: alpha dropped
    assert read_label(p2).shape == (4, 4, 3) and tuple(read_label(p2)[0, 0]) == (3, 2, 1)
    p3 = str(tmp_path / 'f.tiff')
    cv2.imwrite(p3, np.zeros((4, 4), np.float32))
    with pytest.raises(ImageReadError, match='f.tiff: unreadable label map: dtype float32'):
        read_label(p3)


def test_empty_folder(tmp_path):
    root = tmp_path / 'sos'
    (root / 'train' / 'palsar').mkdir(parents=True)
    r = subprocess.run([sys.executable, 'tools/dataset_tools/check_dataset.py', '--type', 'SOSDataset', '--root',
                        str(root), '--img-dir', 'train/palsar'], capture_output=True, text=True, cwd=ROOT)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "no images ending in '_sat.jpg'" in out and 'train/palsar' in out
    assert 'concatenate' not in out
    with pytest.raises(FileNotFoundError, match="no images ending in '_sat.jpg'"):
        _dataset(str(root), check_files=False)
    with pytest.raises((SystemExit, FileNotFoundError), match="no images ending in '_sat.jpg'"):
        _b_tool.main([B_CFG, '--num-workers', '0', '--out', str(tmp_path / 'b.json'), '--cfg-options',
                      f'train_dataloader.dataset.data_root={root}', 'train_dataloader.dataset.split=None'])


def test_binary_01_masks_warned(tmp_path):
    root = _sos_root(tmp_path, mask_high=1)
    rep = check_dataset(_dataset(root, check_files=False))
    assert rep['num_problems'] == 0  # a warning, not a failure
    assert len(rep['warnings']) == 1 and '3 of 3 masks have maximum value 1' in rep['warnings'][0]
    assert '0_mask.png' in rep['warnings'][0] and 'threshold=1' in rep['warnings'][0]
    ds = _dataset(root)
    with pytest.warns(UserWarning, match=r'0_mask.png: binary mask with maximum value 1'):
        ds[0]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # once per folder
        ds[1]
    # with threshold=1 the same masks read as oil, without a warning
    cfg = Config.fromfile(osp.join(ROOT, SOS_CFG))
    ds1 = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=root, threshold=1, split=None))
    assert int(ds1[0]['data_samples'].gt_sem_seg.data.max()) == 1
    # a real 0/255 mask does not warn
    rep = check_dataset(_dataset(_sos_root(tmp_path / 'ok'), check_files=False))
    assert not rep['warnings']


# ---------------------------------------------------------------------------------------------------- D_aug
class _Runner:
    cfg = Config(dict())


def _loop(out_dir, checkpoint, num_samples=4):
    from projects.sar_oilspill.engine.jointnet_generation_loop import JointNetGenerationLoop
    return JointNetGenerationLoop(_Runner(), out_dir=out_dir, num_samples=num_samples, checkpoint=checkpoint)


def _settings(loop):
    """What ``JointNetGenerationLoop._settings`` records, without a model."""
    return dict(classes=['background', 'oil_spill'], num_classes=2, balancing_factor=0.43, base_seed=0,
                num_inference_steps=3, eta=0.0, timestep_spacing='leading', size=[8, 8],
                checkpoint=loop.checkpoint, checkpoint_sha256=loop._checkpoint_sha256(), name_prefix='s')


def test_daug_checkpoint_compared_by_content(tmp_path):
    ckpt = tmp_path / 'a' / 'iter_6.pth'
    ckpt.parent.mkdir()
    ckpt.write_bytes(b'checkpoint bytes')
    out = str(tmp_path / 'daug')
    first = _loop(out, str(ckpt))
    first._write_manifest(_settings(first), complete=False)
    # the same bytes at another path: accepted
    copy = tmp_path / 'b' / 'copy.pth'
    copy.parent.mkdir()
    shutil.copy(ckpt, copy)
    same = _loop(out, str(copy))
    same._check_existing(_settings(same))
    # other bytes (at the same path or another): refused, naming both
    other = tmp_path / 'b' / 'other.pth'
    other.write_bytes(b're-trained bytes')
    for path in (str(other), str(ckpt)):
        if path == str(ckpt):
            ckpt.write_bytes(b'retrained in place')
        loop = _loop(out, path)
        with pytest.raises(ValueError, match='checkpoint: existing .*iter_6.pth.*SHA-256'):
            loop._check_existing(_settings(loop))


def test_daug_num_samples_below_folder_contents(tmp_path):
    from projects.sar_oilspill.datasets.daug import write_daug_sample
    out = str(tmp_path / 'daug')
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'x')
    for i in range(6):  # an earlier run made 6
        write_daug_sample(out, f's{i:06d}', np.full((8, 8), 0.1 * i), np.zeros((2, 8, 8)))
    loop = _loop(out, str(ckpt), num_samples=4)  # this run asks for 4: nothing to generate
    loop._check_existing(_settings(loop))
    loop._write_manifest(_settings(loop), complete=True)
    assert loop._unlisted_samples() == ['s000004', 's000005']
    manifest = json.load(open(osp.join(out, 'manifest.json')))
    meta = dict(classes=('background', 'oil_spill'))
    with pytest.warns(UserWarning, match='2 image files not listed'):
        ds = DATASETS.build(dict(type='DAugDataset', data_root=out, metainfo=meta,
                                 pipeline=[dict(type='LoadOilSpillImage'), dict(type='LoadSoftLabels')]))
    assert len(ds) == manifest['num_samples'] == len(manifest['samples']) == 4
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))] == \
        [s['name'] + '.png' for s in manifest['samples']]
    assert ds[3]['img'].shape == (8, 8, 3)
    # a listed sample that lost a file is an error naming it, not silently skipped
    os.remove(osp.join(out, 'logits', 's000002.npy'))
    with pytest.raises(FileNotFoundError, match="s000002"):
        DATASETS.build(dict(type='DAugDataset', data_root=out, metainfo=meta, pipeline=[]))
