"""LayerNorm2d (MambaVision's ``ln2d`` output norm and CAFT's pre-norm): one class, statistics
in float32 under half precision, against a float64 formula written here."""
import pytest
import torch

from projects.sar_oilspill.models.backbones import mambavision_blocks
from projects.sar_oilspill.models.necks import caft
from projects.sar_oilspill.models.necks.caft import CAFTBlock
from projects.sar_oilspill.models.utils import LayerNorm2d


def reference(x, weight, bias, eps=1e-5):
    """Per pixel: (x - mean_C) / sqrt(var_C + eps) * w + b, biased variance, float64."""
    x = x.double()
    mean = x.mean(1, keepdim=True)
    var = ((x - mean)**2).mean(1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight.double()[:, None, None] + \
        bias.double()[:, None, None]


def _norm(c, seed=0):
    g = torch.Generator().manual_seed(seed)
    norm = LayerNorm2d(c)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.5 * torch.randn(c, generator=g))
        norm.bias.copy_(0.5 * torch.randn(c, generator=g))
    return norm


def _features(shape, offset, spread, seed=1):
    """Un-normalised features like the encoder's: a large common offset and a large spread."""
    g = torch.Generator().manual_seed(seed)
    return offset + spread * torch.randn(shape, generator=g)


def test_one_class_shared_with_unchanged_state_dict_keys():
    assert caft.LayerNorm2d is LayerNorm2d and mambavision_blocks.LayerNorm2d is LayerNorm2d
    block = CAFTBlock(8, 16, ffn_expansion_factor=2.0)
    keys = set(block.state_dict())
    for name in ('norm_lr', 'norm_hr', 'norm_ffn'):
        assert {f'{name}.weight', f'{name}.bias'} <= keys
    assert set(LayerNorm2d(4).state_dict()) == {'weight', 'bias'}


def test_float32_matches_reference():
    norm = _norm(12)
    x = _features((2, 12, 5, 7), 3.0, 2.0)
    y = norm(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    torch.testing.assert_close(y.double(), reference(x, norm.weight, norm.bias), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize('dtype,tol', [(torch.float16, 4e-3), (torch.bfloat16, 3e-2)])
def test_half_input_with_large_values(dtype, tol):
    """|x - mean| up to about 3000: squared in float16 that overflows (65504) and the output
    collapsed to the bias. Now: the float32 result, rounded once to the input dtype."""
    norm = _norm(32)
    x = _features((2, 32, 6, 6), 1000.0, 800.0).to(dtype)
    assert (x.float() - x.float().mean(1, keepdim=True)).abs().max() > 256
    x.requires_grad_()
    y = norm(x)
    assert y.dtype == dtype
    ref = reference(x.detach(), norm.weight, norm.bias)
    scale = ref.abs().max()
    assert ((y.double() - ref).abs().max() / scale) < tol
    # not the bias: the normalised part is there
    assert (y.double() - norm.bias.double()[:, None, None]).abs().max() > 0.5
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    (y.float() * gy).sum().backward()
    x64 = x.detach().double().requires_grad_()
    w64 = norm.weight.detach().double().requires_grad_()
    b64 = norm.bias.detach().double().requires_grad_()
    (reference(x64, w64, b64) * gy.double()).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(norm.weight.grad).all()
    # input gradients are O(1 / spread): compare relative to their largest value
    assert ((x.grad.double() - x64.grad).abs().max() / x64.grad.abs().max()) < 10 * tol
    assert ((norm.weight.grad.double() - w64.grad).abs().max() / w64.grad.abs().max()) < 10 * tol


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_under_autocast_keeps_input_dtype(dtype):
    norm = _norm(16)
    x = _features((1, 16, 4, 4), 500.0, 400.0)
    with torch.autocast('cpu', dtype=dtype):
        y32 = norm(x)
        y_half = norm(x.to(dtype))
    assert y32.dtype == torch.float32 and y_half.dtype == dtype
    torch.testing.assert_close(y32.double(), reference(x, norm.weight, norm.bias), rtol=1e-5,
                               atol=1e-5)
    assert torch.isfinite(y_half).all()


def test_half_weights_model_dot_half():
    """A model cast with .half() (weights float16 too) still computes in float32."""
    norm = _norm(8).half()
    x = _features((1, 8, 3, 3), 1000.0, 700.0).half()
    y = norm(x)
    assert y.dtype == torch.float16
    ref = reference(x, norm.weight, norm.bias)
    assert ((y.double() - ref).abs().max() / ref.abs().max()) < 4e-3
