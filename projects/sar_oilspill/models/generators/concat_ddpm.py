"""Single-U-Net DDPM on concatenated image and label channels: the "DDPM" row of the paper's Table 1.

Paper Sec. 4.3: "For training DDPM, we adopt the methodology from SatSynth, where SAR images and segmentation
masks are simply concatenated as input." One denoiser sees ``[x_img, x_lbl]`` (``C_img + K`` channels) and predicts
the x0 of both, with the noise schedule, forward process, DDIM sampler, data handling and outputs of
:class:`~.sar_jointnet.SARJointNet`, so the JointNet train/generation loops and the D_aug tools work unchanged.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .joint_unet import DiffusionUNet
from .sar_jointnet import SARJointNet


@MODELS.register_module()
class ConcatDDPM(SARJointNet):
    """One pixel-space U-Net denoising the channel concatenation of SAR image and scaled mask.

    The U-Net is :class:`~.joint_unet.DiffusionUNet` (diffusers' ``UNet2DModel`` blocks and layout, as each
    SAR-JointNet branch) with ``C_img + K`` input and output channels: output channels ``[:C_img]`` are the image
    x0, ``[C_img:]`` the label output (logits with ``label_loss='ce'``, the scaled-mask x0 with ``'l2'``).
    SatSynth's baseline is plain diffusion on the concatenation: set ``label_loss='l2'`` and
    ``balancing_factor=1.0`` (``configs/sar_jointnet/ablations/ddpm-concat_osd.py``). Labels are one-hot in
    {-b, b} (K channels), not SatSynth's analog bits, so that the outputs keep D_aug's per-class format.

    Stages: the network is trained on both modalities from the first iteration, so there is no image-only
    stage 1. Stages 2 and 3 of :class:`~projects.sar_oilspill.engine.JointNetTrainLoop` both train the one U-Net
    (stage 3 at the loop's reduced learning rate); ``set_stage(1)`` raises, so configs give stage 1 no iterations
    (``stage_iters=(0, n2, n3)``). There is no Label-Net to initialise from SAR-Net:
    ``init_label_net_from_sar_net`` does nothing, and the flag it sets is true from the start.

    Args:
        stage (int): Initial stage, 2 or 3.
        **kwargs: As :class:`~.sar_jointnet.SARJointNet` (``unet`` configures the one U-Net).
    """

    def __init__(self, *args, stage: int = 2, **kwargs) -> None:
        super().__init__(*args, stage=stage, **kwargs)
        self.label_net_initialized.fill_(True)

    def _build_network(self) -> nn.Module:
        channels = self.image_channels + self.num_classes
        return DiffusionUNet(channels, channels, **self.unet_cfg)

    @property
    def sar_net(self) -> nn.Module:
        """The one U-Net (tools read its ``sample_size`` under this name)."""
        return self.joint

    @property
    def label_net(self) -> nn.Module:
        """The one U-Net."""
        return self.joint

    def _stage_trainable_modules(self, stage: int) -> List[nn.Module]:
        return [self.joint]

    def set_stage(self, stage: int, _warn: bool = True) -> None:
        """Switch to stage 2 or 3 (both train the whole U-Net); stage 1 (image only) does not exist here."""
        if stage == 1:
            raise ValueError('ConcatDDPM denoises image and label channels together and has no image-only stage 1: '
                             'give stage 1 no iterations (train_cfg.stage_iters=(0, n2, n3)) and build it with '
                             'stage=2')
        super().set_stage(stage, _warn=False)

    def init_label_net_from_sar_net(self, reset_exchange: bool = True) -> None:
        """Nothing to do: there is no separate Label-Net."""
        self.label_net_initialized.fill_(True)

    def denoise(self, image_t: torch.Tensor, label_t: Optional[torch.Tensor],
                timesteps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One evaluation of the U-Net on ``cat([image_t, label_t], 1)``.

        Args:
            image_t (Tensor): Noisy images ``(B, C_img, H, W)``.
            label_t (Tensor): Noisy scaled masks ``(B, K, H, W)`` (required).
            timesteps (Tensor): ``(B,)`` integer timesteps.

        Returns:
            tuple: ``(x0_image (B, C_img, H, W), label output (B, K, H, W))``.
        """
        if label_t is None:
            raise ValueError('ConcatDDPM needs the noisy label channels (it has no image-only mode)')
        out = self.joint(torch.cat([image_t, label_t], dim=1), timesteps)
        return out[:, :self.image_channels], out[:, self.image_channels:]
