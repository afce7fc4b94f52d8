"""Generation ablations of Tables 1 and 5 (configs/sar_jointnet/ablations/): each config trains 2 iterations through
tools/train.py (JointNetTrainLoop) on tiny inputs, and each ablation is checked to take effect; the single-U-Net
DDPM also generates through tools/generate_daug.py and is measured by tools/analysis/eval_generation.py."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from projects.sar_oilspill.models.generators import (ConcatDDPM, SARJointNet, joint_ddim_sample,
                                                     label_x0_to_logits, logits_to_label_x0)

torch.set_num_threads(1)
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
ABL = osp.join(ROOT, 'configs', 'sar_jointnet', 'ablations')
NAMES = ('no-ce', 'no-b', 'no-ce-no-b', 'jointnet', 'ddpm-concat')
# config -> (label loss, b, model type)
EXPECTED = {'no-ce': ('l2', 0.528, 'SARJointNet'), 'no-b': ('ce', 1.0, 'SARJointNet'),
            'no-ce-no-b': ('l2', 1.0, 'SARJointNet'), 'jointnet': ('l2', 1.0, 'SARJointNet'),
            'ddpm-concat': ('l2', 1.0, 'ConcatDDPM')}
TINY = """_base_ = {base!r}
model = dict(unet=dict(block_out_channels=(16, 32), layers_per_block=1, attention_resolutions=(16, ), sample_size=32,
                       norm_num_groups=8, attention_head_dim=8), test_cfg=dict(num_inference_steps=2))
train_pipeline = [dict(type='LoadOilSpillImage'), dict(type='LoadOilSpillAnnotations'),
                  dict(type='RandomCrop', crop_size=(32, 32)), dict(type='PackSegInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root!r}, pipeline=train_pipeline))
train_cfg = dict(stage_iters={iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
"""


def _run(args):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def tiny_configs(synthetic_osd, tmp_path_factory):
    """Each ablation config with a tiny U-Net, 32x32 crops of the synthetic OSD-layout set and 2 iterations:
    stages 1 + 2 for the SAR-JointNet variants, 2 + 3 for the single U-Net (it has no stage 1)."""
    folder = tmp_path_factory.mktemp('ablation_cfgs')
    paths = {}
    for name in NAMES:
        iters = (0, 1, 1) if name == 'ddpm-concat' else (1, 1, 0)
        path = folder / f'{name}_tiny.py'
        path.write_text(TINY.format(base=osp.join(ABL, f'{name}_osd.py'), root=synthetic_osd, iters=iters))
        paths[name] = str(path)
    return paths


@pytest.fixture(scope='module')
def trained(tiny_configs, tmp_path_factory):
    """Trains a config on first use: returns (work dir, tools/train.py output)."""
    done = {}

    def train(name):
        if name not in done:
            wd = str(tmp_path_factory.mktemp(f'wd_{name}'))
            done[name] = wd, _run(['tools/train.py', tiny_configs[name], '--work-dir', wd])
        return done[name]
    return train


def _batch(n=2, hw=(16, 16), num_classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, *hw, generator=g) * 2 - 1
    samples = []
    for _ in range(n):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *hw), generator=g))
        samples.append(ds)
    return x, samples


def _model(tiny_configs, name, stage=2):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(tiny_configs[name]).model)
    if stage >= 2 and model.stage < 2:
        model.init_label_net_from_sar_net()
        model.set_stage(stage)
    return model


def _alphas_cumprod_squaredcos(T=1000):
    """Squared-cosine schedule (Nichol & Dhariwal 2021, Eq. 17; betas capped at 0.999), by hand."""
    f = [math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(T + 1)]
    betas = [min(1 - f[t + 1] / f[t], 0.999) for t in range(T)]
    return torch.tensor(np.cumprod([1 - b for b in betas]), dtype=torch.float32)


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize('name', NAMES)
def test_config_trains_two_iterations_with_its_ablation(name, trained):
    label_loss, b, model_type = EXPECTED[name]
    cfg = Config.fromfile(osp.join(ABL, f'{name}_osd.py'))
    assert cfg.model.type == model_type and cfg.model.get('label_loss', 'ce') == label_loss
    assert cfg.model.balancing_factor == b and cfg.model.num_classes == 5
    assert cfg.generation_cfg.out_dir == f'data/daug/osd_{name}'  # never the paper model's D_aug
    wd, out = trained(name)
    assert 'Iter(train) [2/2]' in out
    state = torch.load(osp.join(wd, 'iter_2.pth'), map_location='cpu', weights_only=False)['state_dict']
    assert float(state['balancing_factor_buf']) == pytest.approx(b)
    if label_loss == 'ce':  # stage 2 logged its CE term
        assert 'loss_label: ' in out and 'loss_label_l2' not in out
    else:  # the label branch was trained with the L2 diffusion loss, never CE
        assert 'loss_label_l2: ' in out and 'loss_label: ' not in out
    if model_type == 'ConcatDDPM':  # one U-Net on 1 image + 5 label channels, stages 2 then 3
        assert state['joint.conv_in.weight'].shape[1] == 6 and state['joint.conv_out.weight'].shape[0] == 6
        assert not any('exchange' in k or 'sar_net' in k for k in state)
        assert int(state['training_stage']) == 3 and 'stage 2 -> 3' in out
    else:
        assert int(state['training_stage']) == 2 and 'stage 1 -> 2' in out


def test_jointnet_is_the_no_ce_no_b_model():
    jn = Config.fromfile(osp.join(ABL, 'jointnet_osd.py'))
    ref = Config.fromfile(osp.join(ABL, 'no-ce-no-b_osd.py'))
    assert jn.model.to_dict() == ref.model.to_dict() and jn.train_cfg.to_dict() == ref.train_cfg.to_dict()
    paper = Config.fromfile(osp.join(ROOT, 'configs', 'sar_jointnet', 'osd.py'))
    assert jn.train_cfg.stage_iters == paper.train_cfg.stage_iters  # the paper's three stages


# ---------------------------------------------------------------- the ablations take effect
def test_no_ce_label_loss_is_l2_on_the_scaled_mask(tiny_configs, monkeypatch):
    model = _model(tiny_configs, 'no-ce')
    x, samples = _batch()
    samples[0].gt_sem_seg.data[0, :3, :3] = 255  # ignored pixels do not count
    torch.manual_seed(1)
    _, labels, xt_img, xt_lbl, t = model._noisy_batch(x, samples)
    with torch.no_grad():
        _, out = model.denoise(xt_img, xt_lbl, t)

    def no_ce(*a, **k):
        raise AssertionError('cross_entropy called in the no-CE ablation')
    monkeypatch.setattr(F, 'cross_entropy', no_ce)
    torch.manual_seed(1)
    losses = model.loss(x, samples)
    assert set(losses) == {'loss_image', 'loss_label_l2'}
    b = 0.528
    target = b * (2 * F.one_hot(labels.clamp(0, 4), 5).permute(0, 3, 1, 2).float() - 1)
    valid = (labels != 255)[:, None].expand_as(target)
    expected = ((out - target)[valid] ** 2).mean()
    torch.testing.assert_close(losses['loss_label_l2'].detach(), expected, rtol=1e-5, atol=1e-7)
    losses['loss_label_l2'].backward()
    assert model.joint.label_net.conv_out.weight.grad.abs().sum() > 0


def test_no_b_noises_the_mask_with_b_equal_one(tiny_configs):
    abar = _alphas_cumprod_squaredcos()
    x, samples = _batch()
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    onehot_pm1 = 2 * F.one_hot(labels, 5).permute(0, 3, 1, 2).float() - 1  # Eq. 1 before scaling
    for name, b in (('no-b', 1.0), ('no-ce', 0.528)):
        model = _model(tiny_configs, name)
        torch.manual_seed(7)
        _, _, xt_img, xt_lbl, t = model._noisy_batch(x, samples)
        torch.manual_seed(7)  # the same draws, in _noisy_batch's order: t, image noise, label noise
        t_ref = torch.randint(0, 1000, (2, ))
        noise_img, noise_lbl = torch.randn_like(x), torch.randn_like(onehot_pm1)
        assert torch.equal(t, t_ref)
        a = abar[t_ref].view(-1, 1, 1, 1)
        torch.testing.assert_close(xt_lbl, a.sqrt() * b * onehot_pm1 + (1 - a).sqrt() * noise_lbl)  # Eq. 2
        torch.testing.assert_close(xt_img, a.sqrt() * x + (1 - a).sqrt() * noise_img)


def test_l2_label_sampling_uses_the_predicted_x0():
    """label_x0_fn: the DDIM step takes the label output itself (clipped to [-b, b]) as x0, not Eq. 21 of it."""
    from projects.sar_oilspill.models.generators import build_sampling_scheduler
    b = 0.5
    y = torch.tensor([0.9, -0.2, -0.7]).view(1, 3, 1, 1).expand(1, 3, 2, 2)  # x0 estimate, one value out of range
    seen = []

    def denoise(img, lbl, t):
        seen.append(lbl.clone())
        return torch.zeros_like(img), y.clone()
    x_t = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    out = joint_ddim_sample(denoise, build_sampling_scheduler(), torch.zeros(1, 1, 2, 2), x_t, b, 2,
                            label_x0_fn=lambda v: v.clamp(-b, b))
    torch.testing.assert_close(out.logits, y)  # the last evaluation's output
    # DDIM (eta 0) by hand from t = 999 to t = 499 (2 trailing steps) with x0 = clip(y)
    abar = _alphas_cumprod_squaredcos()
    x0 = y.clamp(-b, b)
    eps = (x_t - abar[999].sqrt() * x0) / (1 - abar[999]).sqrt()
    torch.testing.assert_close(seen[1], abar[499].sqrt() * x0 + (1 - abar[499]).sqrt() * eps)
    joint_ddim_sample(denoise, build_sampling_scheduler(), torch.zeros(1, 1, 2, 2), x_t, b, 2)
    assert not torch.allclose(seen[-1], seen[1])  # the default (Eq. 21 of y) takes another path
    # label_x0_to_logits inverts Eq. 21 for a distribution: softmax back to p, Eq. 21 back to the x0
    p = torch.tensor([0.7, 0.2, 0.1]).view(1, 3, 1, 1)
    logits = label_x0_to_logits(b * (2 * p - 1), b)
    torch.testing.assert_close(torch.softmax(logits, 1), p)
    torch.testing.assert_close(logits_to_label_x0(logits, b), b * (2 * p - 1))


def test_no_ce_model_samples_logits_of_its_x0(tiny_configs):
    model = _model(tiny_configs, 'no-ce').eval()
    res = model.sample(seeds=[0, 1], num_inference_steps=2, size=(16, 16))
    assert res.image.shape == (2, 1, 16, 16) and res.logits.shape == (2, 5, 16, 16)
    assert torch.isfinite(res.logits).all() and float(res.logits.max()) <= 0  # log-probabilities
    assert isinstance(model, SARJointNet) and model.label_loss == 'l2'


def test_ddpm_concat_one_unet_on_concatenated_channels(tiny_configs):
    model = _model(tiny_configs, 'ddpm-concat')
    assert isinstance(model, ConcatDDPM) and model.stage == 2 and bool(model.label_net_initialized)
    assert model.joint.conv_in.in_channels == 1 + 5 and model.joint.conv_out.out_channels == 1 + 5
    seen = []
    handle = model.joint.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    x, samples = _batch()
    losses = model.loss(x, samples)
    handle.remove()
    assert seen == [torch.Size([2, 6, 16, 16])] and set(losses) == {'loss_image', 'loss_label_l2'}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters())  # the one U-Net trains in stage 2 (and 3)
    with pytest.raises(ValueError, match='no image-only stage 1'):
        model.set_stage(1)
    model.eval()
    res = model.sample(seeds=[3, 4], num_inference_steps=2, size=(16, 16))
    assert res.image.shape == (2, 1, 16, 16) and res.logits.shape == (2, 5, 16, 16)
    assert float(res.image.abs().max()) <= 1 and torch.isfinite(res.logits).all()
    again = model.sample(seeds=[4], num_inference_steps=2, size=(16, 16))  # per-sample seeds, as SAR-JointNet
    torch.testing.assert_close(again.image[0], res.image[1])


def test_ddpm_concat_generates_daug_and_is_measured(trained, tiny_configs, synthetic_osd, tmp_path):
    wd, _ = trained('ddpm-concat')
    daug = str(tmp_path / 'daug')
    out = _run(['tools/generate_daug.py', tiny_configs['ddpm-concat'], osp.join(wd, 'iter_2.pth'), '--out-dir', daug,
                '--work-dir', str(tmp_path / 'gen_wd'), '--num-samples', '2', '--steps', '2', '--size', '16',
                '--grid', '0'])
    assert 'generated 2 samples' in out
    manifest = json.load(open(osp.join(daug, 'manifest.json')))
    assert manifest['complete'] and manifest['num_classes'] == 5 and manifest['balancing_factor'] == 1.0
    logits = np.load(osp.join(daug, 'logits', 's000001.npy'))
    assert logits.shape == (5, 16, 16) and np.isfinite(logits).all()
    metrics = str(tmp_path / 'metrics.json')
    _run(['tools/analysis/eval_generation.py', daug, '--real-root', osp.join(synthetic_osd, 'train', 'images'),
          '--real-type', 'osd', '--enl-window', '0', '--out', metrics])
    assert osp.isfile(metrics)
