"""The deterministic validation split carved out of a training set (datasets/val_split.py, dataset ``split=``)."""
import os
import os.path as osp
import random
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS

from projects.sar_oilspill.datasets.val_split import check_split, read_id_list, split_ids, train_subset

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _sos(root, img='train/palsar', split=None, **kw):
    return DATASETS.build(dict(type='SOSDataset', data_root=str(root), pipeline=[], split=split,
                               data_prefix=dict(img_path=img, seg_map_path=img), **kw))


def _ids(ds):
    return sorted(osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds)))


def _write_sos(root, names):
    folder = osp.join(root, 'train', 'palsar')
    os.makedirs(folder, exist_ok=True)
    for n in names:
        cv2.imwrite(osp.join(folder, f'{n}_sat.jpg'), np.full((8, 8, 3), 90, np.uint8))
        cv2.imwrite(osp.join(folder, f'{n}_mask.png'), np.zeros((8, 8, 3), np.uint8))


def test_split_ids_is_fixed_disjoint_and_complete():
    ids = [f'{i:05d}' for i in range(50)]
    train, val = split_ids(ids, 0.1, seed=0)
    assert len(val) == 5 and len(train) == 45
    assert not set(train) & set(val) and sorted(train + val) == ids
    # the same ids on every machine: pinned (sha256 of "seed:id", independent of PYTHONHASHSEED and listing order)
    assert val == ['00014', '00018', '00022', '00036', '00047']
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    assert split_ids(shuffled, 0.1, seed=0) == (train, val)
    assert split_ids(ids, 0.1, seed=1)[1] != val
    assert len(split_ids(ids[:3], 0.01)[1]) == 1 and len(split_ids(ids[:3], 0.99)[0]) == 1  # both parts non-empty


@pytest.mark.parametrize('split, match', [
    (dict(part='test'), 'split.part'), (dict(part='val', fraction=1.0), 'fraction'),
    (dict(part='val', fraction=0), 'fraction'), (dict(part='val', seed='0'), 'seed'),
    (dict(part='val', frac=0.1), 'unknown keys'), ('val', 'expected dict'),
    (dict(part='train', train_size=0), 'train_size'), (dict(part='train', train_size=2.5), 'train_size'),
    (dict(part='train', train_size=True), 'train_size'), (dict(part='val', train_size=10), "part='train' only")])
def test_bad_split_arguments_are_refused(split, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_split(split)


def test_split_errors_name_the_problem():
    with pytest.raises(ValueError, match='cannot be split'):
        split_ids(['a'], 0.5)
    with pytest.raises(ValueError, match="duplicate ids, e.g. \\['a'\\]"):
        split_ids(['a', 'a', 'b'], 0.5)


def test_dataset_split_on_synthetic_sos(tmp_path):
    names = [f'{i}' for i in range(20)]
    _write_sos(tmp_path, names)
    full = _sos(tmp_path)
    train = _sos(tmp_path, split=dict(part='train', fraction=0.25, seed=3))
    val = _sos(tmp_path, split=dict(part='val', fraction=0.25, seed=3))
    assert len(train) == 15 and len(val) == 5
    assert not set(_ids(train)) & set(_ids(val)) and sorted(_ids(train) + _ids(val)) == _ids(full)
    assert val.split_info == dict(part='val', fraction=0.25, seed=3, num_total=20, num_train=15, num_val=5)
    exp_train, exp_val = split_ids(names, 0.25, seed=3)
    assert _ids(val) == sorted(f'{n}_sat.jpg' for n in exp_val)


def test_train_subset_is_the_head_of_the_split_order_and_nested():
    import hashlib
    train, _ = split_ids([f'{i:05d}' for i in range(50)], 0.1, seed=0)
    # independent reference: the ids of the training part ordered by hand by sha256("0:<id>")
    by_hand = sorted(train, key=lambda i: hashlib.sha256(f'0:{i}'.encode()).hexdigest())
    assert train_subset(train, 12, seed=0) == sorted(by_hand[:12])
    small, large = set(train_subset(train, 5)), set(train_subset(train, 20))
    assert len(small) == 5 and small < large < set(train)
    shuffled = train[:]
    random.Random(2).shuffle(shuffled)
    assert train_subset(shuffled, 12) == train_subset(train, 12)
    assert train_subset(train, len(train)) == sorted(train)
    with pytest.raises(ValueError, match='train_size=46 but the training part holds 45'):
        train_subset(train, 46)


def test_dataset_train_size_budget(tmp_path):
    names = [f'{i}' for i in range(20)]
    _write_sos(tmp_path, names)
    split = dict(part='train', fraction=0.25, seed=3)
    train = _sos(tmp_path, split=split)
    budget = _sos(tmp_path, split=dict(split, train_size=6))
    val = _sos(tmp_path, split=dict(part='val', fraction=0.25, seed=3))
    assert len(budget) == 6 and set(_ids(budget)) < set(_ids(train)) and not set(_ids(budget)) & set(_ids(val))
    exp_train, _ = split_ids(names, 0.25, seed=3)
    assert _ids(budget) == sorted(f'{n}_sat.jpg' for n in train_subset(exp_train, 6, seed=3))
    assert budget.split_info == dict(split, train_size=6, num_total=20, num_train=6, num_val=5, num_train_part=15)
    with pytest.raises(ValueError, match=r"SOSDataset: split=.*train_size=16 but the training part holds 15"):
        _sos(tmp_path, split=dict(split, train_size=16))


def test_dataset_split_on_osd_layout(synthetic_osd):
    kw = dict(type='OSDDataset', data_root=synthetic_osd, pipeline=[],
              data_prefix=dict(img_path='train/images', seg_map_path='train/labels_1D'))
    full = DATASETS.build(kw)
    parts = {p: DATASETS.build(dict(kw, split=dict(part=p, fraction=0.25, seed=0))) for p in ('train', 'val')}
    assert len(parts['val']) == 3 and len(parts['train']) == len(full) - 3
    assert sorted(_ids(parts['train']) + _ids(parts['val'])) == _ids(full)
    assert not set(_ids(parts['train'])) & set(_ids(parts['val']))


def test_make_val_split_lists_match_the_config_split(tmp_path):
    """The tool's list files, read as mmseg ann_file, give the same samples as split=dict(...)."""
    _write_sos(tmp_path / 'data', [f'{i}' for i in range(12)])
    out = tmp_path / 'lists'
    r = subprocess.run([sys.executable, 'tools/dataset_tools/make_val_split.py', '--type', 'SOSDataset', '--root',
                        str(tmp_path / 'data'), '--img-dir', 'train/palsar', '--fraction', '0.25', '--seed', '5',
                        '--out-dir', str(out)], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    assert '12 samples -> 9 train' in r.stdout
    for part in ('train', 'val'):
        by_list = _sos(tmp_path / 'data', ann_file=str(out / f'{part}.txt'))
        by_split = _sos(tmp_path / 'data', split=dict(part=part, fraction=0.25, seed=5))
        assert _ids(by_list) == _ids(by_split)
        assert sorted(f'{i}_sat.jpg' for i in read_id_list(str(out / f'{part}.txt'))) == _ids(by_split)


def test_split_of_the_real_sos_subset(sos_mini):
    train = _sos(sos_mini, split=dict(part='train', fraction=0.1, seed=0))
    val = _sos(sos_mini, split=dict(part='val', fraction=0.1, seed=0))
    full = _sos(sos_mini)
    assert (len(train), len(val)) == (360, 40) and len(full) == 400
    assert not set(_ids(train)) & set(_ids(val)) and sorted(_ids(train) + _ids(val)) == _ids(full)
    # pinned: the same 40 validation tiles on every machine
    assert _ids(val)[:3] == ['10778_sat.jpg', '10833_sat.jpg', '10897_sat.jpg']


def _config_parts(config, root):
    """train / val / test datasets of a config (DAKD: the real part of training), pointed at ``root``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    parts = {}
    for part in ('train', 'val', 'test'):
        ds = dict(cfg[f'{part}_dataloader']['dataset'])
        if ds.get('type') == 'DAKDDataset':
            ds = dict(ds['real'])
        ds.update(data_root=str(root), pipeline=[])
        parts[part] = DATASETS.build(ds)
    return parts


def _paths(ds):
    return {ds.get_data_info(i)['img_path'] for i in range(len(ds))}


@pytest.mark.parametrize('config', ['configs/saross/sos_alos.py', 'configs/baselines/segformer_b0_sos_sentinel.py',
                                    'configs/dakd/segformer_b0_sos_alos.py'])
def test_configs_select_on_a_val_part_carved_from_train(config, sos_mini):
    """Issue 10: no config validates (save_best) on the test split; train / val / test are disjoint."""
    parts = _config_parts(config, sos_mini)
    train, val, test = (_paths(parts[p]) for p in ('train', 'val', 'test'))
    assert train and val and test
    assert not train & val and not train & test and not val & test
    sensor = 'sentinel' if 'sentinel' in config else 'palsar'
    everything = _paths(_sos(sos_mini, img=f'train/{sensor}'))
    assert train | val == everything and len(val) == round(0.1 * len(everything))
    assert all(f'{os.sep}test{os.sep}' in p for p in test)


def test_osd_and_demo_configs_select_on_a_val_part(synthetic_osd):
    for config in ('configs/saross/synthetic_tiny.py', 'configs/baselines/unet_osd.py'):
        parts = _config_parts(config, synthetic_osd)
        train, val, test = (_paths(parts[p]) for p in ('train', 'val', 'test'))
        assert val and not train & val and not (train | val) & test
        assert all(osp.join('train', 'images') in p for p in train | val)
        assert all(osp.join('test', 'images') in p for p in test)
