"""Noise schedules and joint DDIM sampling of SAR-JointNet (Sec. 4.2, Alg. 2, Eq. 21).

Schedules are diffusers' own: ``DDPMScheduler`` (squared-cosine betas of Nichol &
Dhariwal 2021, 1000 steps, x0 parameterisation) for the forward process during
training, and ``DDIMScheduler`` with the same betas for generation. Clipping of the
predicted x0 is done here, not by the scheduler (``clip_sample=False``): the image
x0 is clipped to [-1, 1] and the label x0 to [-b, b] (Eq. 21).

Randomness: with per-sample ``torch.Generator`` objects (one per sample, e.g. from
:func:`make_generators`), sample ``i`` draws, in this order and only from its own
generator: its initial image noise ``(C_img, H, W)``, its initial label noise
``(K, H, W)``, then at every DDIM step with ``eta > 0`` its image variance noise and
its label variance noise. Its result is therefore independent of which other
samples share the batch.
"""
from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from diffusers import DDIMScheduler, DDPMScheduler

DenoiseFn = Callable[[torch.Tensor, Optional[torch.Tensor], torch.Tensor],
                     Tuple[torch.Tensor, Optional[torch.Tensor]]]


class JointSample(NamedTuple):
    """Result of :func:`joint_ddim_sample`.

    Attributes:
        image (Tensor): Generated SAR images ``(N, C_img, H, W)`` in [-1, 1].
        logits (Tensor | None): Label-Net logits ``(N, K, H, W)`` of the LAST model
            evaluation (at the smallest DDIM timestep); None for image-only sampling.
    """
    image: torch.Tensor
    logits: Optional[torch.Tensor]


def build_train_scheduler(num_train_timesteps: int = 1000,
                          beta_schedule: str = 'squaredcos_cap_v2') -> DDPMScheduler:
    """DDPM scheduler used for the forward (noising) process in training.

    Args:
        num_train_timesteps (int): ``T``.
        beta_schedule (str): diffusers beta schedule name.

    Returns:
        DDPMScheduler: ``prediction_type='sample'`` (x0 parameterisation, Eq. 5).
    """
    return DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                         prediction_type='sample', clip_sample=False)


def build_sampling_scheduler(num_train_timesteps: int = 1000,
                             beta_schedule: str = 'squaredcos_cap_v2',
                             timestep_spacing: str = 'trailing') -> DDIMScheduler:
    """DDIM scheduler for generation, with the training betas.

    Args:
        num_train_timesteps (int): ``T``.
        beta_schedule (str): diffusers beta schedule name (same as training).
        timestep_spacing (str): diffusers spacing of the inference timesteps.
            ``'trailing'`` (project default) starts at ``t = T - 1`` (the noise level
            that matches the N(0, I) initialisation) and, for 200 steps, visits
            999, 994, ..., 4; diffusers' ``'leading'`` visits 995, ..., 0.

    Returns:
        DDIMScheduler: ``prediction_type='sample'``, ``clip_sample=False`` (x0 is
        clipped by :func:`joint_ddim_sample`), ``set_alpha_to_one=True`` (the last
        step returns the predicted x0).
    """
    return DDIMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                         prediction_type='sample', clip_sample=False, set_alpha_to_one=True,
                         timestep_spacing=timestep_spacing)


def logits_to_label_x0(logits: torch.Tensor, balancing_factor: float) -> torch.Tensor:
    """Rescale Label-Net logits to the range of the scaled mask (Eq. 21).

    ``x0_label = clip(b * (2 * softmax(logits) - 1), -b, b)``, softmax over the
    class axis 1.

    Args:
        logits (Tensor): ``(B, K, H, W)``.
        balancing_factor (float): ``b``.

    Returns:
        Tensor: ``(B, K, H, W)`` in ``[-b, b]``.
    """
    b = float(balancing_factor)
    x0 = b * (2.0 * torch.softmax(logits, dim=1) - 1.0)  # Eq. 21
    return x0.clamp(-b, b)


def label_x0_to_logits(label_x0: torch.Tensor, balancing_factor: float, eps: float = 1e-6) -> torch.Tensor:
    """Logits whose softmax is the class estimate held by a scaled-mask x0 (inverse of Eq. 21).

    For a Label-Net trained with the plain diffusion (L2) loss on the scaled mask instead of CE
    (the "w/o CE loss" rows of Table 5 and JointNet of Table 1), the network output is an x0
    estimate ``y`` in ``[-b, b]``, not logits. ``p = (clip(y, -b, b) / b + 1) / 2`` inverts Eq. 21
    channel-wise and ``log(max(p, eps))`` gives logits with ``softmax = p / sum(p)`` (= ``p``
    when ``p`` sums to 1 over the classes, e.g. for an exact one-hot mask), so D_aug stores
    per-pixel logits for every model.

    Args:
        label_x0 (Tensor): ``(B, K, H, W)`` x0 estimate of the scaled mask.
        balancing_factor (float): ``b``.
        eps (float): Floor of ``p`` before the log.

    Returns:
        Tensor: ``(B, K, H, W)`` logits.
    """
    b = float(balancing_factor)
    p = (label_x0.clamp(-b, b) / b + 1.0) / 2.0
    return p.clamp_min(eps).log()


def make_generators(seeds: Sequence[int], device: str = 'cpu') -> List[torch.Generator]:
    """One ``torch.Generator`` per seed (``manual_seed(seed)``)."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def per_sample_randn(shape: Sequence[int],
                     generators: Optional[Sequence[torch.Generator]],
                     num: int,
                     device: torch.device,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise ``(num, *shape)``, row ``i`` drawn from ``generators[i]``.

    Args:
        shape (Sequence[int]): Per-sample shape, e.g. ``(C, H, W)``.
        generators (Sequence[torch.Generator] | None): ``num`` generators, or None to
            use the global RNG on ``device``.
        num (int): Number of samples.
        device (torch.device): Device of the result (noise is drawn on each
            generator's device, then moved).
        dtype (torch.dtype): dtype of the result.

    Returns:
        Tensor: ``(num, *shape)``.
    """
    shape = tuple(int(s) for s in shape)
    if generators is None:
        return torch.randn((num, ) + shape, device=device, dtype=dtype)
    if len(generators) != num:
        raise ValueError(f'need one generator per sample: got {len(generators)} for {num} samples')
    rows = [torch.randn(shape, generator=g, device=g.device, dtype=dtype) for g in generators]
    return torch.stack(rows).to(device)


@torch.no_grad()
def joint_ddim_sample(denoise_fn: DenoiseFn,
                      scheduler: DDIMScheduler,
                      image_noise: torch.Tensor,
                      label_noise: Optional[torch.Tensor],
                      balancing_factor: float,
                      num_inference_steps: int = 200,
                      eta: float = 0.0,
                      generators: Optional[Sequence[torch.Generator]] = None,
                      label_x0_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> JointSample:
    """Joint DDIM sampling of SAR images and label logits (Alg. 2).

    At every timestep ``t`` (descending): ``(x0_img, logits) = denoise_fn(x_img, x_lbl, t)``;
    ``x0_img`` is clipped to [-1, 1], ``x0_lbl = clip(b (2 softmax(logits) - 1), -b, b)``
    (Eq. 21); both branches then take a DDIM step with their x0 (``prediction_type
    'sample'``). With ``set_alpha_to_one`` the last step returns the clipped x0.

    Args:
        denoise_fn (Callable): ``(x_img (N,C,H,W), x_lbl (N,K,H,W) | None, t (N,))
            -> (x0_img (N,C,H,W), logits (N,K,H,W) | None)``.
        scheduler (DDIMScheduler): x0-parameterised scheduler with ``clip_sample=False``
            (see :func:`build_sampling_scheduler`); ``set_timesteps`` is called here.
        image_noise (Tensor): Initial image noise ``x_T`` ``(N, C_img, H, W)``.
        label_noise (Tensor | None): Initial label noise ``(N, K, H, W)``; None for
            image-only sampling (stage 1), in which case ``denoise_fn`` receives None.
        balancing_factor (float): ``b``.
        num_inference_steps (int): DDIM steps (paper: 200).
        eta (float): DDIM eta (0 = deterministic).
        generators (Sequence[torch.Generator] | None): Per-sample generators for the
            ``eta > 0`` variance noise; None uses the global RNG.
        label_x0_fn (Callable, optional): Maps the label-branch output to the label x0;
            default (None) Eq. 21, :func:`logits_to_label_x0`. A Label-Net trained with
            the L2 diffusion loss instead of CE predicts x0 itself:
            ``lambda y: y.clamp(-b, b)``.

    Returns:
        JointSample: ``image`` ``(N, C_img, H, W)`` in [-1, 1] and ``logits``
        ``(N, K, H, W)`` from the last model evaluation (None for image-only).
    """
    if scheduler.config.prediction_type != 'sample':
        raise ValueError(f"scheduler must use prediction_type='sample', got "
                         f'{scheduler.config.prediction_type!r}')
    if scheduler.config.clip_sample:
        raise ValueError('scheduler must have clip_sample=False: x0 is clipped per branch here '
                         '(image to [-1, 1], label to [-b, b])')
    if num_inference_steps < 1:
        raise ValueError(f'num_inference_steps must be >= 1, got {num_inference_steps}')
    device = image_noise.device
    num = image_noise.shape[0]
    scheduler.set_timesteps(num_inference_steps, device=device)
    x_img, x_lbl = image_noise, label_noise
    logits: Optional[torch.Tensor] = None
    b = float(balancing_factor)
    for t in scheduler.timesteps.tolist():
        t_batch = torch.full((num, ), t, device=device, dtype=torch.long)
        x0_img, logits = denoise_fn(x_img, x_lbl, t_batch)
        x0_img = x0_img.clamp(-1.0, 1.0)
        noise_img = noise_lbl = None
        if eta > 0:
            noise_img = per_sample_randn(x_img.shape[1:], generators, num, device, x_img.dtype)
            if x_lbl is not None:
                noise_lbl = per_sample_randn(x_lbl.shape[1:], generators, num, device, x_lbl.dtype)
        x_img = scheduler.step(x0_img, t, x_img, eta=eta, variance_noise=noise_img).prev_sample
        if x_lbl is not None:
            if logits is None:
                raise RuntimeError('denoise_fn returned no logits although label_noise was given')
            x0_lbl = logits_to_label_x0(logits, b) if label_x0_fn is None else label_x0_fn(logits)  # Eq. 21
            x_lbl = scheduler.step(x0_lbl, t, x_lbl, eta=eta, variance_noise=noise_lbl).prev_sample
    return JointSample(image=x_img.clamp(-1.0, 1.0), logits=logits)
