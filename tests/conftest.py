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


TINY_FCN_CONFIG = """default_scope = 'mmseg'
custom_imports = dict(imports=['projects.sar_oilspill'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[128.0] * 3, std=[64.0] * 3,
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size_divisor=32),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8, out_indices=(3,),
                  norm_cfg=norm_cfg),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=0, channels=8, num_convs=1,
                     concat_input=False, num_classes={num_classes}, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss')),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadOilSpillAnnotations'),
                 dict(type='PackSegInputs')]
"""


@pytest.fixture(scope='session')
def tiny_fcn_segmentor():
    """Factory ``make(directory, dataset_meta, bias=None, name='tiny_seg') -> (config, checkpoint)``: a tiny
    ResNet-18 / FCN segmentor (stock mmseg modules) with ``len(dataset_meta['classes'])`` classes, saved with that
    dataset meta. ``bias``: zero classifier weights and this bias (the same logits at every pixel); ``None``: the
    random initialisation of torch seed 0 (logits that depend on the image)."""
    def make(directory, dataset_meta, bias=None, name='tiny_seg'):
        from mmseg.apis import init_model
        cfg = osp.join(str(directory), f'{name}.py')
        with open(cfg, 'w') as f:
            f.write(TINY_FCN_CONFIG.format(num_classes=len(dataset_meta['classes'])))
        torch.manual_seed(0)
        model = init_model(cfg, None, device='cpu')
        if bias is not None:
            with torch.no_grad():
                model.decode_head.conv_seg.weight.zero_()
                model.decode_head.conv_seg.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        ckpt = osp.join(str(directory), f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(dataset_meta))), ckpt)
        return cfg, ckpt
    return make
