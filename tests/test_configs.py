"""Every leaf config parses, uses BN (not SyncBN) and relative data roots, and its model builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_there_are_configs():
    names = {osp.relpath(p, ROOT) for p in CONFIGS}
    assert 'configs/baselines/unet_sos_alos.py' in names
    assert len(names) >= 24


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['projects.sar_oilspill']
    text = cfg.pretty_text
    assert "'SyncBN'" not in text and '/work/' not in text and '/home/' not in text
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for split in ('train', 'val', 'test'):
        dl = cfg.get(f'{split}_dataloader')
        if dl is not None:
            root = dl['dataset'].get('data_root') or ''
            assert not osp.isabs(root), f'{path}: absolute data_root {root}'


def test_ddim_settings_have_one_home():
    """The DDIM step count and eta live in model.test_cfg only; the generation loop reads them from there."""
    jointnet = [p for p in CONFIGS if '/sar_jointnet/' in p]
    assert len(jointnet) >= 8
    for path in jointnet:
        cfg = Config.fromfile(path)
        gen = cfg.get('generation_cfg') or {}
        assert 'num_inference_steps' not in gen and 'eta' not in gen, path
        assert cfg.model.test_cfg['num_inference_steps'] > 0, path
