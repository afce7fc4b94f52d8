"""CUDA smoke tests (marker ``gpu``): skipped on machines without a visible CUDA device.

Run by ``bash tools/gpu_smoke.sh`` (which adds the command-line steps: ``dist_train.sh`` under NCCL through a stage
switch, ``generate_daug.py`` and ``train.py --amp`` on the GPU). Each test is small: the whole file runs in about a
minute on one GPU.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')]

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEV = 'cuda'


def test_report_scan_backend():
    """Which selective scan runs on this GPU (mamba-ssm's kernel or the chunked PyTorch scan); printed for the log."""
    from projects.sar_oilspill.models.backbones import selective_scan as ss
    backend = ss.scan_backend(torch.device(DEV))
    print(f'\nselective scan on {torch.cuda.get_device_name(0)}: {backend}')
    assert backend in ('mamba_ssm', 'pytorch')


@pytest.mark.parametrize('shape', [(2, 16, 49, 8), (2, 32, 196, 8)])
def test_chunked_scan_matches_sequential_reference_float64(shape):
    from projects.sar_oilspill.models.backbones.selective_scan import (selective_scan_chunked,
                                                                        selective_scan_sequential)
    b, d, length, n = shape
    g = torch.Generator(device=DEV).manual_seed(0)

    def rnd(*s, scale=1.0):
        return (scale * torch.randn(*s, generator=g, device=DEV, dtype=torch.float64)).requires_grad_()

    u, delta = rnd(b, d, length), rnd(b, d, length, scale=0.5)
    A = (-torch.rand(d, n, generator=g, device=DEV, dtype=torch.float64) - 0.1).requires_grad_()
    B, C, D, bias = rnd(b, n, length), rnd(b, n, length), rnd(d), rnd(d, scale=0.1)
    args = (u, delta, A, B, C, D)
    y = selective_scan_chunked(*args, delta_bias=bias, delta_softplus=True)
    y_ref = selective_scan_sequential(*args, delta_bias=bias, delta_softplus=True)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-10)
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (*args, bias), gy)
    grads_ref = torch.autograd.grad(y_ref, (*args, bias), gy)
    for a, r in zip(grads, grads_ref):
        torch.testing.assert_close(a, r, rtol=1e-8, atol=1e-9)


def _tiny_saross():
    cfg = copy.deepcopy(Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'saross_tiny_cpu.py')).model)
    cfg.decode_head.num_classes = 3
    return MODELS.build(cfg).to(DEV)


def _seg_batch(n=2, h=128, w=128, k=3):
    g = torch.Generator().manual_seed(0)
    samples = []
    for i in range(n):
        ds = SegDataSample(metainfo=dict(img_path=f'x{i}.png', img_shape=(h, w), ori_shape=(h, w)))
        ds.gt_sem_seg = PixelData(data=torch.randint(0, k, (1, h, w), generator=g))
        if i == 1:
            ds.gt_soft_logits = PixelData(data=2 * torch.randn(k, h, w, generator=g))
        samples.append(ds)
    inputs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for _ in range(n)]
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('precision', ['fp32', 'fp16', 'bf16'])
def test_saross_train_step(precision):
    torch.manual_seed(0)
    model = _tiny_saross()
    model.init_weights()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if precision == 'fp32':
        wrapper = OptimWrapper(optim)
    else:
        dtype = dict(fp16=torch.float16, bf16=torch.bfloat16)[precision]
        wrapper = AmpOptimWrapper(optimizer=optim, loss_scale='dynamic', dtype=dtype)
    for _ in range(3):
        log_vars = model.train_step(_seg_batch(), wrapper)
        for key, value in log_vars.items():
            assert torch.isfinite(torch.as_tensor(value)).all(), (precision, key, value)
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), (precision, name)
    model.eval()
    with torch.no_grad():
        out = model.test_step(_seg_batch(n=1))
    assert torch.isfinite(out[0].seg_logits.data).all()


def test_sar_jointnet_stages_and_ddim_sampling():
    from projects.sar_oilspill.models.generators import TINY_UNET_CFG, SARJointNet
    torch.manual_seed(0)
    model = SARJointNet(balancing_factor=0.45, num_classes=2, unet=TINY_UNET_CFG,
                        test_cfg=dict(num_inference_steps=5)).to(DEV)
    g = torch.Generator().manual_seed(0)
    batch = dict(inputs=[torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8) for _ in range(2)],
                 data_samples=[])
    for _ in range(2):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, 32, 32), generator=g))
        batch['data_samples'].append(ds)
    for stage in (1, 2, 3):
        if stage == 2:
            model.init_label_net_from_sar_net()
        model.set_stage(stage)
        wrapper = OptimWrapper(torch.optim.AdamW(list(model.trainable_parameters()), lr=1e-4))
        log_vars = model.train_step(batch, wrapper)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in log_vars.values()), (stage, log_vars)
    model.eval()
    with torch.no_grad():
        out = model.sample(num_samples=2, seeds=[0, 1])
    images, logits = out.image, out.logits
    assert images.is_cuda and logits is not None and logits.is_cuda
    assert torch.isfinite(images).all() and torch.isfinite(logits).all()
    assert logits.shape[:2] == (2, 2)
