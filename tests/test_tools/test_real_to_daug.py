"""tools/dataset_tools/real_to_daug.py: the real-crop control D_aug of the DAKD study, on the real SOS subset.

Every written crop is checked against the source tile and mask read here with OpenCV directly (not through the
project's loaders), at the position and flip the manifest records.
"""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(ROOT, 'configs', 'saross', 'sos_alos_tiny_cpu.py')


def _tool():
    spec = importlib.util.spec_from_file_location('real_to_daug',
                                                  osp.join(ROOT, 'tools', 'dataset_tools', 'real_to_daug.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _argv(sos_mini, out, *extra):
    return [CONFIG, '--out-dir', str(out), '--num-samples', '6', '--size', '48', '--seed', '3', *extra,
            '--cfg-options', f'train_dataloader.dataset.data_root={sos_mini}']


def test_crops_match_their_tiles_and_labels(sos_mini, tmp_path):
    tool = _tool()
    out = tmp_path / 'daug'
    assert tool.main(_argv(sos_mini, out, '--margin', '5')) == 0
    manifest = json.load(open(out / 'manifest.json'))
    assert manifest['complete'] is True and manifest['source'] == 'real_crops'
    assert manifest['num_classes'] == 2 and manifest['classes'] == ['background', 'oil_spill']
    assert [s['name'] for s in manifest['samples']] == [f's{i:06d}' for i in range(6)]
    assert manifest['dataset']['split'] == dict(part='train', fraction=0.1, seed=0)  # the config's train part
    from projects.sar_oilspill.datasets.val_split import split_ids
    all_ids = sorted(f[:-len('_sat.jpg')] for f in os.listdir(osp.join(sos_mini, 'train', 'palsar'))
                     if f.endswith('_sat.jpg'))
    val_ids = set(split_ids(all_ids, 0.1, 0)[1])
    for s in manifest['samples']:
        tile_id = osp.basename(s['tile'])[:-len('_sat.jpg')]
        assert tile_id not in val_ids  # never a validation tile
        img = cv2.imread(osp.join(sos_mini, s['tile']), cv2.IMREAD_COLOR)[..., 0]
        mask = cv2.imread(osp.join(sos_mini, 'train', 'palsar', f'{tile_id}_mask.png'), cv2.IMREAD_COLOR).max(2)
        y, x = s['y'], s['x']
        ref_img, ref_lab = img[y:y + 48, x:x + 48], (mask[y:y + 48, x:x + 48] >= 128).astype(np.int64)
        if s['hflip']:
            ref_img, ref_lab = ref_img[:, ::-1], ref_lab[:, ::-1]
        got = cv2.imread(str(out / 'images' / f'{s["name"]}.png'), cv2.IMREAD_UNCHANGED)
        logits = np.load(out / 'logits' / f'{s["name"]}.npy')
        assert got.shape == (48, 48) and logits.shape == (2, 48, 48) and logits.dtype == np.float16
        np.testing.assert_array_equal(got, ref_img)
        np.testing.assert_array_equal(logits.argmax(0), ref_lab)
        np.testing.assert_array_equal(logits.max(0), 5.0)  # the margin on the labelled class ...
        np.testing.assert_array_equal(logits.min(0), 0.0)  # ... and 0 on the other
    assert len({s['tile'] for s in manifest['samples']}) > 1

    # D_aug readers take it as they take generated tiles
    from projects.sar_oilspill.datasets.daug import DAugDataset
    ds = DAugDataset(data_root=str(out), pipeline=[], metainfo=dict(classes=('background', 'oil_spill')))
    assert len(ds) == 6


def test_resume_is_identical_and_other_settings_are_refused(sos_mini, tmp_path):
    tool = _tool()
    out = tmp_path / 'daug'
    tool.main(_argv(sos_mini, out))
    files = sorted(os.listdir(out / 'images')) + sorted(os.listdir(out / 'logits'))
    stamps = {f: osp.getmtime(out / 'logits' / f) for f in os.listdir(out / 'logits')}
    first = json.load(open(out / 'manifest.json'))
    os.remove(out / 'logits' / 's000002.npy')  # an interrupted run: the pair is written again, the others kept
    tool.main(_argv(sos_mini, out))
    assert sorted(os.listdir(out / 'images')) + sorted(os.listdir(out / 'logits')) == files
    assert json.load(open(out / 'manifest.json')) == first
    assert all(osp.getmtime(out / 'logits' / f) == t for f, t in stamps.items() if f != 's000002.npy')
    with pytest.raises(ValueError, match=r'other settings.*seed'):
        tool.main(_argv(sos_mini, out)[:-2] + ['--seed', '4', *_argv(sos_mini, out)[-2:]])
    assert json.load(open(out / 'manifest.json')) == first  # nothing written


def test_bad_arguments(capsys):
    tool = _tool()
    for bad in (['--size', '0'], ['--num-samples', '0'], ['--margin', '0']):
        with pytest.raises(SystemExit):
            tool.parse_args([CONFIG, '--out-dir', 'x', *bad])
        assert bad[0] in capsys.readouterr().err
