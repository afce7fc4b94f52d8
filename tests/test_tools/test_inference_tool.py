"""tools/inference.py: class maps, overlays and areas for images without labels (whole or sliding window)."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
_spec = importlib.util.spec_from_file_location('sar_inference_tool', osp.join(ROOT, 'tools', 'inference.py'))
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    from projects.sar_oilspill.datasets import OSDDataset
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(OSDDataset.METAINFO))), path)
    return path


def test_inference_whole_and_sliding(synthetic_osd, checkpoint, tmp_path, capsys):
    images = osp.join(synthetic_osd, 'test', 'images')
    names = sorted(osp.splitext(n)[0] for n in os.listdir(images))
    out = str(tmp_path / 'whole')
    summary = _tool.main([CONFIG, checkpoint, images, '--out-dir', out, '--pixel-size-m', '10', '--save-probs'])
    assert sorted(summary['images']) == names
    for name in names:
        img = cv2.imread(osp.join(images, name + '.jpg'))
        mask = cv2.imread(osp.join(out, 'masks', name + '.png'), cv2.IMREAD_UNCHANGED)
        assert mask.shape == img.shape[:2] and mask.max() < 5
        assert cv2.imread(osp.join(out, 'overlays', name + '.png')).shape == img.shape
        probs = np.load(osp.join(out, 'probs', name + '.npy'))
        assert probs.shape == (5, ) + img.shape[:2]
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=1e-2)
        assert np.array_equal(probs.astype(np.float32).argmax(0), mask) or \
            (probs.astype(np.float32).argmax(0) != mask).mean() < 0.01  # float16 ties
        areas = summary['images'][name]['classes']
        assert sum(a['pixels'] for a in areas.values()) == mask.size
        assert areas['oil_spill']['km2'] == pytest.approx(areas['oil_spill']['pixels'] * 1e-4)
    saved = json.load(open(osp.join(out, 'summary.json')))
    assert sorted(saved['images']) == names and saved['classes'][1] == 'oil_spill'
    # a second run skips finished images
    capsys.readouterr()
    _tool.main([CONFIG, checkpoint, images, '--out-dir', out])
    assert '0 images segmented' in capsys.readouterr().out
    # killed before summary.json was written, and in the middle of appending a record: the finished images come
    # back from summary.jsonl, the torn line is skipped, nothing is segmented again
    log = osp.join(out, 'summary.jsonl')
    assert sorted(json.loads(line)['name'] for line in open(log)) == names
    os.remove(osp.join(out, 'summary.json'))
    with open(log, 'a') as f:
        f.write('{"name": "half-writ')
    resumed = _tool.main([CONFIG, checkpoint, images, '--out-dir', out])
    assert '0 images segmented' in capsys.readouterr().out
    assert resumed['images'] == summary['images']
    assert json.load(open(osp.join(out, 'summary.json')))['images'] == summary['images']
    assert open(log).read().endswith('}\n')  # the torn record was cut off before appending
    # a malformed line that is not the last one is an error naming the file and line
    with open(log, 'a') as f:
        f.write('garbage\n{"name": "x"}\n')
    with pytest.raises(SystemExit, match=r'summary.jsonl: line \d+ is not a JSON record'):
        _tool.main([CONFIG, checkpoint, images, '--out-dir', out])
    # sliding windows: same output sizes
    out2 = str(tmp_path / 'slide')
    _tool.main([CONFIG, checkpoint, osp.join(images, names[0] + '.jpg'), '--out-dir', out2, '--slide', '32', '32'])
    mask = cv2.imread(osp.join(out2, 'masks', names[0] + '.png'), cv2.IMREAD_UNCHANGED)
    assert mask.shape == cv2.imread(osp.join(images, names[0] + '.jpg')).shape[:2]


def test_inference_bad_input(checkpoint, tmp_path):
    with pytest.raises(SystemExit, match='nowhere'):
        _tool.main([CONFIG, checkpoint, str(tmp_path / 'nowhere.png')])
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(SystemExit, match='broken.png'):
        _tool.main([CONFIG, checkpoint, str(bad), '--out-dir', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match='checkpoint'):
        _tool.main([CONFIG, str(tmp_path / 'missing.pth'), str(bad)])
