"""MambaVision backbone: shapes at odd sizes, gradients, NVlabs checkpoint compatibility."""
import argparse
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from projects.sar_oilspill.models.backbones import MambaVision
from projects.sar_oilspill.models.backbones import mambavision_checkpoint as mvc
from projects.sar_oilspill.models.backbones.mambavision import ARCH_SETTINGS
from projects.sar_oilspill.models.backbones.mambavision_blocks import (MambaVisionMixer, window_partition,
                                                                      window_reverse)

REPO = Path(__file__).resolve().parents[3]
B_KEYS = REPO / 'tests' / 'data' / 'mambavision_B_state_dict_keys.txt'  # dumped from NVlabs' mambavision 1.2.0
CONVERTER = REPO / 'tools' / 'model_converters' / 'mambavision_nvlabs_to_mmseg.py'

torch.set_num_threads(min(2, torch.get_num_threads()))


def expected_sizes(h, w):
    return [(math.ceil(h / 2**(i + 2)), math.ceil(w / 2**(i + 2))) for i in range(4)]


@pytest.mark.parametrize('hw', [(95, 27), (64, 64), (27, 95), (33, 129)])
def test_output_shapes_and_values(hw):
    model = MODELS.build(dict(type='MambaVision', arch='test', out_norm=dict(type='LN2d')))
    model.init_weights()
    outs = model(torch.randn(2, 3, *hw))
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, (out, size) in enumerate(zip(outs, expected_sizes(*hw))):
        assert out.shape == (2, 16 * 2**i, *size)
        assert torch.isfinite(out).all()


def test_osd_full_size_shapes():
    """OSD test images are 1250 wide x 650 high: shapes only (tiny variant, no grad)."""
    model = MambaVision(arch='test').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 650, 1250))
    assert [tuple(o.shape[-2:]) for o in outs] == expected_sizes(650, 1250)
    assert [tuple(o.shape[-2:]) for o in outs] == [(163, 313), (82, 157), (41, 79), (21, 40)]


def test_every_parameter_gets_gradient():
    # no stochastic depth here: a block dropped for the whole batch legitimately gets a zero gradient
    torch.manual_seed(0)
    model = MambaVision(arch='test', out_norm=dict(type='LN2d'), drop_path_rate=0.0)
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 45, 37))
    sum((o**2).mean() for o in outs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_mixed_blocks_and_no_gamma_without_layer_scale():
    model = MambaVision(arch='test', layer_scale=None)
    for level in model.levels[2:]:
        kinds = [type(b.mixer).__name__ for b in level.blocks]
        assert kinds == ['MambaVisionMixer', 'Attention']  # depth 2: second half attention
    assert not any('gamma' in k for k in model.state_dict())
    tiny = MambaVision(arch='tiny')  # depths 1,3,8,4 -> attention from block 4 and 2
    assert [type(b.mixer).__name__ for b in tiny.levels[2].blocks].count('Attention') == 4
    assert [type(b.mixer).__name__ for b in tiny.levels[3].blocks].count('Attention') == 2
    assert not any('gamma' in k for k in tiny.state_dict())
    assert tiny.channels == (80, 160, 320, 640)


def read_key_file(path):
    shapes = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        key, shape = line.split('\t')
        shapes[key] = tuple(int(s) for s in shape.strip('()').split(',') if s.strip())
    return shapes


def test_base_state_dict_matches_nvlabs_keys():
    """Every key and shape of NVlabs mamba_vision_B, minus the classifier (norm., head.)."""
    nvlabs = {k: v for k, v in read_key_file(B_KEYS).items()
              if not k.startswith(('norm.', 'head.'))}
    with torch.device('meta'):  # names and shapes only, no allocation
        model = MambaVision(arch='base')
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(ours) == sorted(nvlabs)
    assert ours == nvlabs
    assert len(ours) == 349


def random_checkpoint(path, arch='test', extra=True):
    """An NVlabs-style .pth.tar: timm layout, weights under `state_dict`, classifier kept."""
    src = MambaVision(arch=arch)
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
             for k, v in src.state_dict().items()}
    if extra:
        dim = src.channels[-1]
        state.update({'norm.weight': torch.ones(dim), 'norm.bias': torch.zeros(dim),
                      'norm.running_mean': torch.zeros(dim), 'norm.running_var': torch.ones(dim),
                      'head.weight': torch.randn(10, dim), 'head.bias': torch.zeros(10)})
    torch.save({'epoch': 309, 'arch': 'mamba_vision_T', 'state_dict': state,
                'args': argparse.Namespace(lr=0.005, model='mamba_vision_T')}, path)
    return state


def test_pretrained_init_cfg_loads_nvlabs_checkpoint(tmp_path):
    path = tmp_path / 'mambavision_test_1k.pth.tar'
    state = random_checkpoint(path)
    model = MODELS.build(
        dict(type='MambaVision', arch='test', out_norm=dict(type='LN2d'),
             init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    ours = model.state_dict()
    for key, value in ours.items():
        if key.startswith('outnorm'):
            continue  # new layers of the segmentation wrapper
        assert torch.equal(value, state[key]), key
    outs = model(torch.randn(1, 3, 40, 40))
    assert all(torch.isfinite(o).all() for o in outs)


def test_pretrained_from_segmentor_checkpoint(tmp_path):
    path = tmp_path / 'segmentor.pth'
    state = {k: v for k, v in random_checkpoint(tmp_path / 'x.pth.tar').items()
             if not k.startswith(('norm.', 'head.'))}
    torch.save({'state_dict': {**{'backbone.' + k: v for k, v in state.items()},
                               'decode_head.conv_seg.weight': torch.zeros(2, 4, 1, 1)}}, path)
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert torch.equal(model.state_dict()['levels.3.blocks.1.mixer.qkv.weight'],
                       state['levels.3.blocks.1.mixer.qkv.weight'])


def test_pretrained_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / 'mambavision_base_1k.pth.tar'
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(missing)))
    with pytest.raises(FileNotFoundError, match='mambavision_base_1k.pth.tar'):
        model.init_weights()


def test_pretrained_wrong_variant_raises(tmp_path):
    path = tmp_path / 'partial.pth.tar'
    state = random_checkpoint(path, extra=False)
    del state['levels.2.blocks.0.mixer.A_log']
    torch.save({'state_dict': state}, path)
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match='A_log'):
        model.init_weights()


def test_pretrained_wrong_variant_lists_missing_keys(tmp_path):
    path = tmp_path / 'partial.pth.tar'
    state = random_checkpoint(path, extra=False)
    for key in ('levels.2.blocks.0.mixer.A_log', 'patch_embed.conv_down.0.weight'):
        del state[key]
    torch.save({'state_dict': state}, path)
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match=r'2 missing encoder keys') as err:
        model.init_weights()
    assert 'patch_embed.conv_down.0.weight' in str(err.value)
    assert 'partial.pth.tar' in str(err.value)


def test_pretrained_deeper_variant_is_not_a_silent_partial_load(tmp_path):
    """A checkpoint with every key of the model plus an extra block (here a second ConvBlock
    in level 0): the extra keys are listed and nothing is loaded."""
    deeper = dict(ARCH_SETTINGS['test'], depths=(2, 1, 2, 2))
    src = MambaVision(arch=deeper)
    path = tmp_path / 'deeper.pth.tar'
    torch.save({'state_dict': {k: v + 1 if v.is_floating_point() else v
                               for k, v in src.state_dict().items()}}, path)
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(KeyError, match='unexpected encoder keys') as err:
        model.init_weights()
    assert 'levels.0.blocks.1.conv1.weight' in str(err.value)
    assert 'missing encoder keys' not in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_pretrained_layer_scale_mismatch_and_wrong_shape_raise(tmp_path):
    path = tmp_path / 'with_gamma.pth.tar'
    random_checkpoint(path)  # 'test' has layer_scale=1e-5: gamma_1/gamma_2 in the file
    model = MambaVision(arch='test', layer_scale=None,
                        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match=r'unexpected encoder keys: \[levels\.2\.blocks\.0\.gamma_1'):
        model.init_weights()
    wide = dict(ARCH_SETTINGS['test'], dim=24)
    path = tmp_path / 'wide.pth.tar'
    torch.save({'state_dict': MambaVision(arch=wide).state_dict()}, path)
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match='shape mismatches') as err:
        model.init_weights()
    assert 'patch_embed.conv_down.3.weight: (24, 8, 3, 3) != (16, 8, 3, 3)' in str(err.value)


def test_mismatching_checkpoint_raises_through_segmentor_init(tmp_path):
    """init_cfg Pretrained inside a built segmentor: the error reaches model.init_weights()."""
    deeper = dict(ARCH_SETTINGS['test'], depths=(1, 1, 2, 3))
    path = tmp_path / 'deeper.pth.tar'
    torch.save({'state_dict': MambaVision(arch=deeper).state_dict()}, path)
    segmentor = MODELS.build(dict(
        type='EncoderDecoder',
        backbone=dict(type='MambaVision', arch='test',
                      init_cfg=dict(type='Pretrained', checkpoint=str(path))),
        decode_head=dict(type='FCNHead', in_channels=128, channels=8, num_convs=1,
                         num_classes=2, in_index=3)))
    with pytest.raises(KeyError, match=r'levels\.3\.blocks\.2\.'):
        segmentor.init_weights()


def test_converter_drops_classifier_and_checks_keys(tmp_path):
    spec = importlib.util.spec_from_file_location('mv_converter', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    src, dst = tmp_path / 'nv.pth.tar', tmp_path / 'out' / 'backbone.pth'
    state = random_checkpoint(src)
    converter.convert([str(src), str(dst), '--arch', 'test'])
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert not any(k.startswith(('norm.', 'head.')) for k in saved)
    model = MambaVision(arch='test')
    model.load_state_dict(saved, strict=True)
    assert torch.equal(model.state_dict()['patch_embed.conv_down.0.weight'],
                       state['patch_embed.conv_down.0.weight'])
    with pytest.raises(ValueError, match='does not match'):
        converter.convert([str(src), str(dst), '--arch', 'tiny'])


def test_checkpoint_key_handling_is_shared_with_the_converter(tmp_path):
    """One place reads NVlabs layouts: weights under `state_dict` / `model` / the top level / a named key,
    `module.` stripped, non-tensors dropped; the converter's --ema path goes through it too."""
    t = torch.ones(2)
    for ckpt in ({'state_dict': {'module.a': t, 'b': t, 'n': 3}, 'epoch': 1},
                 {'model': {'module.a': t, 'b': t}}, {'module.a': t, 'b': t, 'epoch': 7}):
        assert list(mvc.nvlabs_weights(ckpt)) == ['a', 'b']
    assert list(mvc.nvlabs_weights({'state_dict': {'x': t}, 'state_dict_ema': {'module.y': t}},
                                   key='state_dict_ema')) == ['y']
    with pytest.raises(KeyError, match=r"'f.pth' has no 'state_dict_ema'; top-level keys: \['state_dict'\]"):
        mvc.nvlabs_weights({'state_dict': {}}, key='state_dict_ema', source='f.pth')
    missing, unexpected, wrong = mvc.compare_shapes({'levels.a': (2, ), 'levels.b': (3, ), 'head.w': (1, )},
                                                    {'levels.a': (4, ), 'levels.c': (1, ), 'norm.x': (1, )},
                                                    mvc.ENCODER_PREFIXES)
    assert (missing, unexpected, wrong) == (['levels.b'], ['levels.c'], ['levels.a: (4,) != (2,)'])

    spec = importlib.util.spec_from_file_location('mv_converter_ema', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    assert converter.CLASSIFIER_PREFIXES is mvc.CLASSIFIER_PREFIXES
    src, dst = tmp_path / 'ema.pth.tar', tmp_path / 'ema.pth'
    state = random_checkpoint(tmp_path / 'x.pth.tar')
    ema = {'module.' + k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    torch.save({'state_dict': state, 'state_dict_ema': ema}, src)
    converter.convert([str(src), str(dst), '--arch', 'test', '--ema'])
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert torch.equal(saved['patch_embed.conv_down.0.weight'], state['patch_embed.conv_down.0.weight'] + 1)


def test_window_partition_order_and_roundtrip():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    windows = window_partition(x, 2)  # (2 * 2 * 3, 4, 3)
    assert windows.shape == (12, 4, 3)
    # first window of image 0, channel 0: rows 0-1, cols 0-1, row-major
    assert windows[0, :, 0].tolist() == [0., 1., 6., 7.]
    # second window: cols 2-3
    assert windows[1, :, 0].tolist() == [2., 3., 8., 9.]
    assert torch.equal(window_reverse(windows, 2, 4, 6), x)


def naive_scan(u, delta, A, B, C, D):
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(delta[:, :, t, None] * A) * h + \
            delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, -1)


def test_mixer_against_nvlabs_recipe():
    """MambaVisionMixer against the NVlabs forward transcribed with explicit ops (float64):
    in_proj -> split x,z -> depthwise conv1d (pad 1) + SiLU -> x_proj -> dt_proj(+bias) ->
    scan with delta = softplus(dt + bias) (bias counted twice, as in NVlabs) -> cat[y, z]."""
    torch.manual_seed(0)
    mixer = MambaVisionMixer(32).double()
    tokens = torch.randn(3, 10, 32, dtype=torch.float64)
    W = {k: v.detach() for k, v in mixer.state_dict().items()}
    xz = tokens @ W['in_proj.weight'].T
    x, z = xz[..., :16].transpose(1, 2), xz[..., 16:].transpose(1, 2)
    x = F.silu(F.conv1d(x, W['conv1d_x.weight'], padding=1, groups=16))
    z = F.silu(F.conv1d(z, W['conv1d_z.weight'], padding=1, groups=16))
    x_dbl = x.transpose(1, 2) @ W['x_proj.weight'].T
    rank = math.ceil(32 / 16)
    dt_low, B, C = x_dbl[..., :rank], x_dbl[..., rank:rank + 8], x_dbl[..., rank + 8:]
    dt = dt_low @ W['dt_proj.weight'].T + W['dt_proj.bias']
    delta = F.softplus(dt + W['dt_proj.bias']).transpose(1, 2)
    y = naive_scan(x, delta, -torch.exp(W['A_log']), B.transpose(1, 2), C.transpose(1, 2),
                   W['D'])
    expected = torch.cat([y, z], dim=1).transpose(1, 2) @ W['out_proj.weight'].T
    assert torch.allclose(mixer(tokens), expected, atol=1e-10)


def test_frozen_stages_norm_eval_and_out_indices():
    model = MambaVision(arch='test', frozen_stages=1, norm_eval=True, out_indices=(1, 3),
                        out_norm=dict(type='BN'))
    model.train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.levels[0].parameters())
    assert all(p.requires_grad for p in model.levels[1].parameters())
    assert not model.patch_embed.training and not model.levels[0].training
    assert not model.levels[1].blocks[0].norm1.training  # norm_eval
    assert hasattr(model, 'outnorm1') and not hasattr(model, 'outnorm0')
    outs = model(torch.randn(2, 3, 33, 50))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 5, 7), (2, 128, 2, 2)]


def test_with_cp_matches_plain():
    torch.manual_seed(0)
    plain = MambaVision(arch='test', window_size=3).eval()
    ckpt = MambaVision(arch='test', window_size=3, with_cp=True).eval()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 50, 38, requires_grad=True)
    out_a, out_b = plain(x), ckpt(x)
    for a, b in zip(out_a, out_b):
        assert torch.allclose(a, b, atol=1e-6)
    sum(o.sum() for o in out_b).backward()
    assert all(p.grad is not None for p in ckpt.levels[3].parameters())


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='huge'), 'unknown arch'),
    (dict(arch=dict(dim=8, depths=(1, 1, 1, 1))), 'lacks'),
    (dict(arch='test', window_size=(4, 4, 4)), 'window_size'),
    (dict(arch='test', out_indices=(4, )), 'out_indices'),
    (dict(arch='test', layer_scale='yes'), 'layer_scale'),
    (dict(arch='test', window_padding='reflect'), 'window_padding'),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MambaVision(**kwargs)


# ------------------------------------------------------------------ windows that fit the input
def _unpadded_level(level, x, ws):
    """Reference: every window run on its valid tokens alone (no padding anywhere), a window of
    min(ws, map) per dimension, windows tiling the map from the top-left."""
    out = torch.empty_like(x)
    _, _, h, w = x.shape
    wh, ww = min(ws, h), min(ws, w)
    for r in range(0, h, wh):
        for c in range(0, w, ww):
            part = x[:, :, r:r + wh, c:c + ww]
            b, ch, ph, pw = part.shape
            t = part.permute(0, 2, 3, 1).reshape(b, ph * pw, ch)  # row-major over the valid part
            for blk in level.blocks:
                t = blk(t)
            out[:, :, r:r + ph, c:c + pw] = t.reshape(b, ph, pw, ch).permute(0, 3, 1, 2)
    return out


@pytest.mark.parametrize('hw,ws', [((13, 7), 4), ((9, 10), 4), ((5, 3), 8), ((16, 16), 8), ((6, 11), 3)])
def test_masked_windows_equal_the_unpadded_computation(hw, ws):
    """window_padding='mask': each window's tokens (a partial edge window too) get exactly the features
    they get alone; padding changes nothing. NVlabs' zero padding ('zeros') does change them."""
    torch.manual_seed(0)
    model = MambaVision(arch='test', window_size=ws).eval()
    level = model.levels[2]  # token level: Mamba mixer + attention blocks
    for blk in level.blocks:  # larger layer scale: the token mixing must show in the features
        blk.gamma_1.data.fill_(1.)
        blk.gamma_2.data.fill_(1.)
    x = torch.randn(2, level.blocks[0].norm1.normalized_shape[0], *hw)
    with torch.no_grad():
        got = level.forward_blocks(x)
        want = _unpadded_level(level, x, ws)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()
        level.window_padding = 'zeros'
        zeros = level.forward_blocks(x)
    padded = hw[0] % ws or hw[1] % ws
    if padded:
        assert not torch.allclose(zeros, want, atol=1e-3)
    else:
        assert torch.allclose(zeros, want, atol=1e-5)


def test_masked_windows_gradients_and_checkpointing():
    torch.manual_seed(0)
    plain = MambaVision(arch='test', window_size=(4, 4, 3, 2)).train()
    ckpt = MambaVision(arch='test', window_size=(4, 4, 3, 2), with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 70, 45)  # level 2: 5x3 in 3x3 windows, level 3: 3x2 in 2x2 windows
    outs_a, outs_b = plain(x), ckpt(x)
    for a, b in zip(outs_a, outs_b):
        assert torch.allclose(a, b, atol=1e-6)
    sum(o.square().sum() for o in outs_b).backward()
    for name, p in ckpt.levels[2:].named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_windows_larger_than_the_map_are_the_whole_map():
    """At 256x256 (SOS tiles) the level maps are 16x16 and 8x8: windows (8, 8, 16, 8) and NVlabs'
    segmentation windows (8, 8, 64, 32) compute the same features (one whole-map window each), with no padding;
    the ImageNet windows (8, 8, 14, 7) split the maps instead."""
    torch.manual_seed(0)
    arch = dict(ARCH_SETTINGS['test'], window_size=(4, 4, 16, 8))
    fit = MambaVision(arch=arch).eval()
    big = MambaVision(arch=dict(arch, window_size=(4, 4, 64, 32))).eval()
    big.load_state_dict(fit.state_dict())
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        for a, b in zip(fit(x), big(x)):
            assert torch.equal(a, b)
