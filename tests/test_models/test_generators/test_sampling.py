"""Tests of the noise schedules, Eq. 21 and the joint DDIM sampler against hand references."""
import math

import numpy as np
import pytest
import torch

from projects.sar_oilspill.models.generators.sampling import (
    build_sampling_scheduler, build_train_scheduler, joint_ddim_sample, logits_to_label_x0,
    make_generators, per_sample_randn)

torch.set_num_threads(1)
T = 1000


def _alpha_bar(t):
    """Nichol & Dhariwal (2021) squared cosine, float64."""
    return np.cos((np.asarray(t, np.float64) / T + 0.008) / 1.008 * np.pi / 2)**2


def _closed_form_betas():
    t = np.arange(T, dtype=np.float64)
    return np.minimum(1 - _alpha_bar(t + 1) / _alpha_bar(t), 0.999)


@pytest.mark.parametrize('builder', [build_train_scheduler, build_sampling_scheduler])
def test_squared_cosine_schedule_matches_closed_form(builder):
    sched = builder()
    betas = _closed_form_betas()
    alphas_cumprod = np.cumprod(1 - betas)
    assert sched.config.num_train_timesteps == T
    assert sched.config.prediction_type == 'sample'
    np.testing.assert_allclose(sched.betas.double().numpy(), betas, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sched.alphas_cumprod.double().numpy(), alphas_cumprod,
                               rtol=5e-5, atol=1e-9)
    # the product telescopes: prod_{s<=t} (1 - beta_s) = abar(t+1) / abar(0) where beta is not capped
    t = np.arange(T)
    uncapped = np.cumprod(betas < 0.999).astype(bool)
    assert uncapped.sum() == T - 1  # only the very last beta hits the 0.999 cap
    np.testing.assert_allclose(sched.alphas_cumprod.double().numpy()[uncapped],
                               (_alpha_bar(t + 1) / _alpha_bar(0))[uncapped], rtol=5e-5, atol=1e-9)


def test_ddim_scheduler_settings_and_trailing_timesteps():
    sched = build_sampling_scheduler()
    assert not sched.config.clip_sample
    sched.set_timesteps(200)
    expected = np.round(np.arange(T, 0, -T / 200)) - 1  # trailing: 999, 994, ..., 4
    np.testing.assert_array_equal(sched.timesteps.numpy(), expected)
    assert sched.timesteps[0] == 999 and sched.timesteps[-1] == 4


def test_logits_to_label_x0_hand_example():
    b = 0.4
    # softmax([0, ln 3]) = [0.25, 0.75] -> 2p - 1 = [-0.5, 0.5] -> * b = [-0.2, 0.2]
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)
    out = logits_to_label_x0(logits, b)
    np.testing.assert_allclose(out.flatten().numpy(), [-0.2, 0.2], atol=1e-6)
    # three classes, equal logits: p = 1/3 -> b * (2/3 - 1) = -b/3
    out3 = logits_to_label_x0(torch.zeros(2, 3, 4, 5), b)
    np.testing.assert_allclose(out3.numpy(), np.full((2, 3, 4, 5), -b / 3), atol=1e-6)
    # saturated logits stay inside [-b, b]
    sat = logits_to_label_x0(torch.tensor([200.0, -200.0]).view(1, 2, 1, 1), b)
    assert sat.max() <= b and sat.min() >= -b
    np.testing.assert_allclose(sat.flatten().numpy(), [b, -b], atol=1e-6)


def _mock_x0_img(x, t):
    # leaves [-1, 1] at large t (clipping matters) and contracts at small t (final output unsaturated)
    return 1.7 * x + 0.3 if t > 500 else 0.3 * x


def _mock_denoise(x_img, x_lbl, t):
    # x0 predictions depending on the input so that the recursion is non-trivial
    assert bool((t == t[0]).all())
    x0_img = _mock_x0_img(x_img, int(t[0]))
    logits = torch.cat([x_lbl[:, :1] * 2.0, -x_lbl[:, 1:2] + 0.5], dim=1)
    return x0_img, logits


def test_joint_ddim_sample_matches_hand_recursion():
    torch.manual_seed(0)
    b, steps = 0.45, 4
    img0 = torch.randn(2, 1, 5, 3)
    lbl0 = torch.randn(2, 2, 5, 3)
    sched = build_sampling_scheduler()
    out = joint_ddim_sample(_mock_denoise, sched, img0, lbl0, b, num_inference_steps=steps)

    # independent float64 reference: closed-form alpha_bar, hand DDIM (eta=0) with x0 parameterisation
    abar = np.cumprod(1 - _closed_form_betas())
    timesteps = [999, 749, 499, 249]  # trailing spacing for 4 of 1000 steps
    x_img, x_lbl = img0.double().numpy(), lbl0.double().numpy()
    last_logits = None
    for t in timesteps:
        a_t = abar[t]
        a_prev = abar[t - T // steps] if t - T // steps >= 0 else 1.0
        x0_img = np.clip(_mock_x0_img(x_img, t), -1, 1)
        logits = np.concatenate([x_lbl[:, :1] * 2.0, -x_lbl[:, 1:2] + 0.5], axis=1)
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        x0_lbl = np.clip(b * (2 * p - 1), -b, b)  # Eq. 21
        eps_img = (x_img - np.sqrt(a_t) * x0_img) / np.sqrt(1 - a_t)
        eps_lbl = (x_lbl - np.sqrt(a_t) * x0_lbl) / np.sqrt(1 - a_t)
        x_img = np.sqrt(a_prev) * x0_img + np.sqrt(1 - a_prev) * eps_img
        x_lbl = np.sqrt(a_prev) * x0_lbl + np.sqrt(1 - a_prev) * eps_lbl
        last_logits = logits
    np.testing.assert_allclose(out.image.double().numpy(), x_img, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.logits.double().numpy(), last_logits, rtol=1e-4, atol=1e-4)
    assert out.image.min() >= -1 and out.image.max() <= 1
    assert (out.image.abs() < 0.99).float().mean() > 0.5  # the comparison is not on saturated pixels


def test_image_only_sampling_and_scheduler_checks():
    torch.manual_seed(0)
    img0 = torch.randn(1, 1, 4, 4)
    out = joint_ddim_sample(lambda x, y, t: (torch.zeros_like(x), None), build_sampling_scheduler(),
                            img0, None, 0.5, num_inference_steps=3)
    assert out.logits is None
    # zero x0 prediction and final alpha = 1 -> the last step returns exactly 0
    assert torch.equal(out.image, torch.zeros_like(img0))
    from diffusers import DDIMScheduler
    bad = DDIMScheduler(beta_schedule='squaredcos_cap_v2', prediction_type='sample', clip_sample=True)
    with pytest.raises(ValueError, match='clip_sample'):
        joint_ddim_sample(_mock_denoise, bad, img0, None, 0.5, num_inference_steps=2)
    eps_sched = DDIMScheduler(beta_schedule='squaredcos_cap_v2', clip_sample=False)
    with pytest.raises(ValueError, match='prediction_type'):
        joint_ddim_sample(_mock_denoise, eps_sched, img0, None, 0.5, num_inference_steps=2)


def test_per_sample_noise_is_independent_of_batch_composition():
    rows = per_sample_randn((2, 3), make_generators([11, 12, 13]), 3, torch.device('cpu'))
    ref = torch.randn((2, 3), generator=torch.Generator().manual_seed(12))
    assert torch.equal(rows[1], ref)

    def run(seeds, eta=1.0):
        gens = make_generators(seeds)
        img = per_sample_randn((1, 6, 5), gens, len(seeds), torch.device('cpu'))
        lbl = per_sample_randn((2, 6, 5), gens, len(seeds), torch.device('cpu'))
        return joint_ddim_sample(_mock_denoise, build_sampling_scheduler(), img, lbl, 0.4,
                                 num_inference_steps=3, eta=eta, generators=gens)

    both, alone = run([3, 8]), run([8])
    torch.testing.assert_close(both.image[1:], alone.image, rtol=0, atol=1e-6)
    torch.testing.assert_close(both.logits[1:], alone.logits, rtol=0, atol=1e-6)
    again = run([3, 8])
    assert torch.equal(again.image, both.image)
    # eta = 1 really injects step noise: same initial noise, different result than eta = 0
    assert not torch.allclose(run([8], eta=0.0).image, alone.image)
