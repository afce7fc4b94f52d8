"""Shared fixtures: repo root on sys.path, the plugin registered, the real SOS subset when it is present."""
import os
import os.path as osp
import sys
import warnings

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
warnings.filterwarnings('ignore', category=DeprecationWarning)
warnings.filterwarnings('ignore', message='.*pkg_resources.*')

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

import projects.sar_oilspill  # noqa: E402,F401
from mmseg.utils import register_all_modules  # noqa: E402

register_all_modules(init_default_scope=True)

SOS_MINI = osp.abspath(osp.join(ROOT, '..', 'shared', 'data', 'sos_mini'))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return ROOT


@pytest.fixture(scope='session')
def sos_mini() -> str:
    """Path of the real SOS subset (../shared/data/sos_mini); the test is skipped when it is absent."""
    if not osp.isdir(osp.join(SOS_MINI, 'train', 'palsar')):
        pytest.skip(f'real SOS subset not found at {SOS_MINI}')
    return SOS_MINI


@pytest.fixture(scope='session')
def synthetic_osd(tmp_path_factory) -> str:
    """A small synthetic dataset in OSD's layout (12 train / 4 test scenes of 64x96)."""
    from projects.sar_oilspill.datasets.synthetic import write_synthetic_osd
    root = str(tmp_path_factory.mktemp('synthetic') / 'osd')
    return write_synthetic_osd(root, num_train=12, num_test=4, height=64, width=96, seed=3)


@pytest.fixture(scope='session')
def tiny_osd_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised checkpoint of the demo's CPU-sized SAROSS-Net (configs/saross/synthetic_tiny.py, OSD's
    five classes), with the dataset meta a trained one carries."""
    from mmengine.config import Config
    from mmseg.registry import MODELS

    from projects.sar_oilspill.datasets import OSDDataset
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')).model)
    # the land class never wins, so the land-mask tests can tell the mask's land from the model's
    with torch.no_grad():
        model.decode_head.conv_seg.bias[4] = -30.0
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(OSDDataset.METAINFO))), path)
    return path
