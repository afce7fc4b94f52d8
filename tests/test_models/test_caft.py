"""CAFTBlock: an independent, loop-based reference of the transposed
cross-attention, odd sizes, gradients, and linear cost in H*W."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer

from projects.sar_oilspill.models.necks import CAFTBlock

torch.set_num_threads(1)


def _layer_norm_channels(x, weight, bias):
    """Per-pixel LayerNorm over channels via torch's own layer_norm."""
    y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1], ), weight, bias,
                     eps=1e-5)
    return y.permute(0, 3, 1, 2)


def _conv1x1(x, weight):
    """(B, Cin, H, W) x (Cout, Cin, 1, 1) as an einsum."""
    return torch.einsum('oc,bchw->bohw', weight[:, :, 0, 0], x)


def _dwconv3x3(x, weight):
    """Depthwise 3x3, zero padding 1, as a sum of shifted copies."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (1, 1, 1, 1))
    out = torch.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            out += weight[None, :, 0, dy, dx, None, None] * \
                xp[:, :, dy:dy + h, dx:dx + w]
    return out


def _reference(block, hr, lr):
    """CAFT as the paper/brief state it: upsample LR, THEN project it (1x1) to
    the attention width; per-head transposed attention written with loops."""
    b, _, h, w = hr.shape
    c = block.q_proj.weight.shape[0]  # attention width (== HR channels by default)
    heads = block.num_heads
    d = c // heads
    lr_n = _layer_norm_channels(lr, block.norm_lr.weight, block.norm_lr.bias)
    lr_up = F.interpolate(lr_n, size=(h, w), mode='bilinear',
                          align_corners=False)
    q = _dwconv3x3(_conv1x1(lr_up, block.q_proj.weight),
                   block.q_dwconv.weight)
    hr_n = _layer_norm_channels(hr, block.norm_hr.weight, block.norm_hr.bias)
    kv = _dwconv3x3(_conv1x1(hr_n, block.kv_proj.weight),
                    block.kv_dwconv.weight)
    k, v = kv[:, :c], kv[:, c:]
    out = hr.new_zeros(b, c, h, w)
    for bi in range(b):
        for hd in range(heads):
            sl = slice(hd * d, (hd + 1) * d)
            qh = q[bi, sl].reshape(d, h * w)
            kh = k[bi, sl].reshape(d, h * w)
            vh = v[bi, sl].reshape(d, h * w)
            qh = qh / qh.pow(2).sum(-1, keepdim=True).sqrt()
            kh = kh / kh.pow(2).sum(-1, keepdim=True).sqrt()
            logits = block.temperature[hd, 0, 0] * (qh @ kh.t())  # (d, d)
            attn = torch.exp(logits - logits.max(-1, keepdim=True).values)
            attn = attn / attn.sum(-1, keepdim=True)
            out[bi, sl] = (attn @ vh).reshape(d, h, w)
    return hr + _conv1x1(out, block.project_out.weight)


def _randomise(block, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype) +
                    (1.0 if p.dim() <= 3 and p.shape[-1] == 1 else 0.))


@pytest.mark.parametrize('heads,attn_channels', [(1, None), (2, None), (4, None),
                                                 (1, 4), (2, 2), (2, 12)])
def test_caft_matches_loop_reference(heads, attn_channels):
    block = CAFTBlock(hr_channels=8, lr_channels=12, num_heads=heads,
                      attn_channels=attn_channels).double()
    assert block.q_proj.weight.shape[0] == (attn_channels or 8)
    _randomise(block)
    g = torch.Generator().manual_seed(1)
    hr = torch.randn(2, 8, 11, 7, generator=g, dtype=torch.float64)
    lr = torch.randn(2, 12, 6, 4, generator=g, dtype=torch.float64)
    got = block(hr, lr)
    want = _reference(block, hr, lr)
    assert got.shape == hr.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # the temperatures really differ per head in this check
    assert heads == 1 or len(set(block.temperature.flatten().tolist())) > 1


def test_caft_odd_sizes_gradients_and_ffn():
    torch.manual_seed(0)
    for ffn in (0., 2.66):
        block = CAFTBlock(hr_channels=8, lr_channels=16, num_heads=2,
                          ffn_expansion_factor=ffn)
        hr = torch.randn(2, 8, 95, 27, requires_grad=True)
        lr = torch.randn(2, 16, 48, 14, requires_grad=True)
        out = block(hr, lr)
        assert out.shape == (2, 8, 95, 27)
        assert torch.isfinite(out).all()
        out.square().mean().backward()
        for name, p in block.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
        assert hr.grad.abs().sum() > 0 and lr.grad.abs().sum() > 0
        assert (block.ffn is not None) == (ffn > 0)


def test_caft_residual_on_hr():
    block = CAFTBlock(hr_channels=4, lr_channels=8)
    with torch.no_grad():
        block.project_out.weight.zero_()
    hr, lr = torch.randn(1, 4, 5, 3), torch.randn(1, 8, 3, 2)
    torch.testing.assert_close(block(hr, lr), hr)


@pytest.mark.parametrize('ca', [None, 8, 4])
def test_caft_parameter_count_by_formula(ca):
    c, c_lr, heads = 16, 32, 4
    block = CAFTBlock(hr_channels=c, lr_channels=c_lr, num_heads=heads,
                      attn_channels=ca)
    ca = ca or c
    want = (2 * c_lr + 2 * c  # two LayerNorms
            + c_lr * ca + 9 * ca  # q: 1x1 + depthwise 3x3, no bias
            + 2 * c * ca + 9 * 2 * ca  # kv
            + heads  # temperature
            + ca * c)  # project_out
    assert sum(p.numel() for p in block.parameters()) == want


def _flops(block, hr_hw, lr_hw):
    hr = torch.randn(1, block.hr_channels, *hr_hw)
    lr = torch.randn(1, block.lr_channels, *lr_hw)
    return FlopAnalyzer(block, (hr, lr)).unsupported_ops_warnings(
        False).uncalled_modules_warnings(False).total()


def test_caft_cost_linear_in_pixels():
    """4x the pixels -> exactly 4x the counted FLOPs (spatial self-attention
    would grow 16x in its (HW x HW) products)."""
    block = CAFTBlock(hr_channels=16, lr_channels=32, num_heads=2).eval()
    small = _flops(block, (16, 12), (8, 6))
    large = _flops(block, (32, 24), (16, 12))
    assert small > 0
    assert large == 4 * small


def test_caft_rejects_bad_config_and_inputs():
    with pytest.raises(ValueError, match='num_heads'):
        CAFTBlock(hr_channels=6, lr_channels=8, num_heads=4)
    with pytest.raises(ValueError, match='attn_channels=6'):
        CAFTBlock(hr_channels=8, lr_channels=8, num_heads=4, attn_channels=6)
    with pytest.raises(ValueError, match='attn_channels=0'):
        CAFTBlock(hr_channels=8, lr_channels=8, attn_channels=0)
    block = CAFTBlock(hr_channels=4, lr_channels=8)
    with pytest.raises(ValueError, match='hr must be'):
        block(torch.randn(1, 5, 4, 4), torch.randn(1, 8, 2, 2))
    with pytest.raises(ValueError, match='lr must be'):
        block(torch.randn(1, 4, 4, 4), torch.randn(1, 4, 2, 2))
