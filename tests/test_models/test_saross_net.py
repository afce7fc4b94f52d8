"""The whole SAROSS-Net as configured (MambaVision + CAFT UNet++ skips + SAROSSHead): odd input sizes, every
parameter gets a gradient, no NaN; for each skip switch and for the ResNet-34 encoder."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TINY = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'saross_tiny_cpu.py')).model
R34 = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'saross_resnet34.py')).model


def _micro(cfg, skip_type):
    """Narrow the CPU config further (speed), keep its structure, pick the skip module."""
    cfg = copy.deepcopy(cfg)
    cfg.decode_head.num_classes = 3
    cfg.decode_head.decoder_channels = (16, 8, 8, 8, 8)
    cfg.decode_head.skip_cfg.skip_type = skip_type
    cfg.data_preprocessor.size_divisor = None  # feed the odd size itself to the model
    cfg.backbone.init_cfg = None  # random weights (the paper configs declare ImageNet weights)
    if cfg.backbone.type == 'MambaVision':
        cfg.backbone.arch.update(dim=8, in_dim=8, num_heads=(1, 1, 2, 2), window_size=(4, 4, 4, 2))
        cfg.backbone.drop_path_rate = 0.0  # a block dropped for the whole batch would get no gradient
        cfg.decode_head.in_channels = [8, 16, 32, 64]
    else:  # mmseg's ResNet zero-initialises the last BN of each block: no gradient reaches conv1/conv2 at step 0
        cfg.backbone.zero_init_residual = False
    return cfg


def _batch(h, w, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(2):
        ds = SegDataSample(metainfo=dict(img_path=f'x{i}.png', img_shape=(h, w), ori_shape=(h, w)))
        lab = torch.randint(0, k, (1, h, w), generator=g)
        lab[0, :2] = 255
        ds.gt_sem_seg = PixelData(data=lab)
        if i == 1:
            ds.gt_soft_logits = PixelData(data=2 * torch.randn(k, h, w, generator=g))
        samples.append(ds)
    imgs = torch.randint(0, 256, (2, 3, h, w), generator=g).float()
    return imgs, samples


@pytest.mark.parametrize('encoder,skip_type,hw', [('mambavision', 'caft', (45, 37)),
                                                   ('mambavision', 'conv3x3', (33, 50)),
                                                   ('mambavision', 'none', (37, 29)),
                                                   ('resnet34', 'caft', (41, 35))])
def test_saross_net_odd_size_every_parameter_gets_gradient(encoder, skip_type, hw):
    torch.manual_seed(0)
    cfg = _micro(TINY if encoder == 'mambavision' else R34, skip_type)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    imgs, samples = _batch(*hw)
    losses = model(imgs, samples, mode='loss')
    for key in ('decode.loss_ce', 'decode.loss_kd', 'decode.loss_dice'):
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        out = model(imgs, samples, mode='predict')
    assert out[0].seg_logits.data.shape == (3, *hw)
    assert torch.isfinite(out[0].seg_logits.data).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_saross_net_mixed_precision_finite(dtype):
    """Forward under autocast (CPU; ``--amp`` runs the same ops on CUDA), backward outside it as
    mmengine's AmpOptimWrapper does: finite losses and gradients, the selective scan and CAFT
    under autocast. (The micro model's features stay small; LayerNorm2d's float16 overflow at
    |x - mean| > 256 is tested on its own in test_layer_norm.py.)"""
    torch.manual_seed(0)
    model = MODELS.build(_micro(TINY, 'caft'))
    model.init_weights()
    model.train()
    imgs, samples = _batch(33, 41)
    with torch.autocast('cpu', dtype=dtype):
        losses = model(imgs, samples, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss), {k: v.item() for k, v in losses.items()}
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0
