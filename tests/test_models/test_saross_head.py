"""UNetPPSkip wiring/parameters; SAROSSHead shapes/gradients at odd sizes."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmseg.registry import MODELS
from projects.sar_oilspill.models.decode_heads import SAROSSHead
from projects.sar_oilspill.models.necks import UNetPPSkip

torch.set_num_threads(1)
init_default_scope('mmseg')

CH = [4, 8, 16, 32]
# a 4-level pyramid as a stride-4/8/16/32 backbone gives for a 95x27 input
SIZES = [(24, 7), (12, 4), (6, 2), (3, 1)]


def _pyramid(batch=2, requires_grad=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, *hw, generator=g).requires_grad_(requires_grad)
        for c, hw in zip(CH, SIZES)
    ]


@pytest.mark.parametrize('skip_type', ['caft', 'conv3x3', 'none'])
def test_skip_shapes_and_gradients(skip_type):
    skip = UNetPPSkip(CH, skip_type=skip_type, num_heads=(1, 2, 4))
    feats = _pyramid(requires_grad=True)
    outs = skip(feats)
    assert [o.shape for o in outs] == [f.shape for f in feats]
    assert all(torch.isfinite(o).all() for o in outs)
    if skip_type == 'none':
        assert all(o is f for o, f in zip(outs, feats))
        assert sum(p.numel() for p in skip.parameters()) == 0
        return
    sum(o.square().mean() for o in outs[:-1]).backward()
    for name, p in skip.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # bottleneck passes through unchanged
    assert outs[-1] is feats[-1]


@pytest.mark.parametrize('skip_type', ['caft', 'conv3x3'])
def test_skip_wiring_is_unetpp(skip_type):
    """Skip i = x_{i,3-i} depends on levels i..3 only (UNet++ topology)."""
    skip = UNetPPSkip(CH, skip_type=skip_type, num_heads=1).eval()
    for i in range(3):
        feats = _pyramid(batch=1, requires_grad=True)
        skip(feats)[i].sum().backward()
        for lvl, f in enumerate(feats):
            touched = f.grad is not None and f.grad.abs().sum() > 0
            assert touched == (lvl >= i), (i, lvl)


@pytest.mark.parametrize('reduction', [1, 2])
def test_skip_parameter_counts_by_formula(reduction):
    c = CH
    heads = (1, 2, 4)

    def caft(ch, ch_lr, h):
        ca = ch // reduction  # attention width
        return 2 * ch_lr + 2 * ch + ch_lr * ca + 9 * ca + 2 * ch * ca + \
            18 * ca + h + ca * ch

    # nodes (i, j): (0,1) (1,1) (2,1) (0,2) (1,2) (0,3); fusion jC->C, j>=2
    nodes = [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (0, 3)]
    want_caft = sum(caft(c[i], c[i + 1], heads[i]) for i, _ in nodes) + \
        sum(j * c[i] * c[i] for i, j in nodes if j > 1)
    got = sum(p.numel() for p in UNetPPSkip(
        c, skip_type='caft', num_heads=heads,
        attn_reduction=reduction).parameters())
    assert got == want_caft
    if reduction > 1:
        return

    # conv3x3: the same fusions, and per node one conv (no bias) C_{i+1} -> C_i + BN in place of the CAFT block
    fusions = sum(j * c[i] * c[i] for i, j in nodes if j > 1)
    want_conv = sum(9 * c[i + 1] * c[i] + 2 * c[i] for i, _ in nodes) + fusions
    got = sum(p.numel() for p in UNetPPSkip(
        c, skip_type='conv3x3').parameters())
    assert got == want_conv
    # two convs per node: + (3x3 conv C_i -> C_i + BN) per node
    got2 = sum(p.numel() for p in UNetPPSkip(
        c, skip_type='conv3x3', num_convs=2).parameters())
    assert got2 - got == sum(9 * c[i] * c[i] + 2 * c[i] for i, _ in nodes)


def test_skip_rejects_bad_config():
    with pytest.raises(ValueError, match='skip_type'):
        UNetPPSkip(CH, skip_type='attn')
    with pytest.raises(ValueError, match='num_heads'):
        UNetPPSkip([6, 8, 16], num_heads=4)
    with pytest.raises(ValueError, match='attn_reduction=3'):
        UNetPPSkip([6, 8, 16], num_heads=1, attn_reduction=3)
    with pytest.raises(ValueError, match='attn_reduction=0'):
        UNetPPSkip([6, 8, 16], attn_reduction=0)
    with pytest.raises(ValueError, match='levels'):
        UNetPPSkip(CH)(_pyramid()[:3])


def _head(skip_type='caft', **kw):
    cfg = dict(
        type='SAROSSHead',
        in_channels=CH,
        decoder_channels=(16, 8, 8, 8, 4),
        skip_cfg=dict(type='UNetPPSkip', skip_type=skip_type,
                      num_heads=(1, 2, 4)),
        num_classes=3,
        dropout_ratio=0.,
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    cfg.update(kw)
    return MODELS.build(cfg)


@pytest.mark.parametrize('skip_type', ['caft', 'conv3x3', 'none'])
def test_head_forward_odd_size_and_gradients(skip_type):
    head = _head(skip_type)
    assert isinstance(head, SAROSSHead) and head.skip.skip_type == skip_type
    feats = _pyramid()
    logits = head(feats)
    # level 0 is 24x7 (stride 4 of 95x27); two x2 stages -> 96x28
    assert logits.shape == (2, 3, 96, 28)
    assert torch.isfinite(logits).all()
    pred = head.predict(feats, [dict(img_shape=(95, 27), pad_shape=(95, 27))],
                        None)
    assert pred.shape == (2, 3, 95, 27)
    logits.square().mean().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_head_uses_pyramid_and_skip_module_size():
    heads = {t: _head(t) for t in ('none', 'conv3x3', 'caft')}
    n = {t: sum(p.numel() for p in h.parameters()) for t, h in heads.items()}
    skip_n = {t: sum(p.numel() for p in h.skip.parameters())
              for t, h in heads.items()}
    # the decoder is identical; only the skip module differs
    assert n['caft'] - n['none'] == skip_n['caft'] > 0
    assert n['conv3x3'] - n['none'] == skip_n['conv3x3'] > skip_n['caft']
    # no skip grid at all == 'none'
    assert sum(p.numel() for p in _head(skip_cfg=None).parameters()) == \
        n['none']


def test_head_rejects_bad_config():
    with pytest.raises(ValueError, match='decoder_channels'):
        _head(decoder_channels=(8, 8))
    with pytest.raises(ValueError, match='channels'):
        _head(channels=99)
    with pytest.raises(ValueError, match='out_channels'):
        _head(num_classes=2, out_channels=1)
    with pytest.raises(ValueError, match='multiple_select'):
        _head(input_transform='resize_concat')
