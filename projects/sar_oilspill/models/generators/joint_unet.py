"""Pixel-space U-Nets of SAR-JointNet (SAR-Net, Label-Net) and their exchange layers.

The two denoisers are built from diffusers' U-Net blocks (``get_down_block``,
``get_up_block``, ``UNetMidBlock2D``, ``Timesteps``, ``TimestepEmbedding``) in the
layout of diffusers' ``UNet2DModel``, but with the forward pass split into
:meth:`DiffusionUNet.encode` (input conv, down blocks, mid block) and
:meth:`DiffusionUNet.decode` (up blocks, output layers), so that the JointNet
exchange (Zhang et al., ICLR 2024; apple/ml-jointnet) can act between them
(paper Sec. 3.2, Fig. 3):

* after its own input conv, each branch adds the OTHER branch's noisy input
  passed through a zero-initialised 3x3 conv;
* before its up path, each branch adds the other branch's skip features and mid
  features passed through zero-initialised 1x1 convs.

The exchange layers are grouped by the branch they feed: :attr:`JointUNet.exchange_to_sar`
holds every layer whose output is added INTO SAR-Net, :attr:`JointUNet.exchange_to_label`
every layer whose output is added into Label-Net. Because all of them start at zero,
a freshly built (or freshly reset) joint model's image output equals SAR-Net's
stand-alone output exactly.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.unets.unet_2d_blocks import (UNetMidBlock2D, get_down_block,
                                                   get_up_block)

Timestep = Union[torch.Tensor, int, float]


def zero_module(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero in place and return it."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def _as_hw(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f'sample_size must be an int or (H, W), got {size}')
    return size  # type: ignore[return-value]


class DiffusionUNet(nn.Module):
    """``UNet2DModel``-like denoiser with an exposed encoder/decoder split.

    Level ``i`` of the U-Net works at ``1 / 2**i`` of the input resolution with
    ``block_out_channels[i]`` channels. Odd input sizes are supported: each stride-2
    downsampling gives ``ceil(n / 2)``, and every upsampled map is cropped (bottom/
    right) to the size of the skip it is concatenated with.

    Args:
        in_channels (int): Channels of the noisy input.
        out_channels (int): Channels of the output (x0 prediction or logits).
        block_out_channels (Sequence[int]): Channels per level.
            Defaults to the 256x256 DDPM layout ``(128, 128, 256, 256, 512, 512)``.
        layers_per_block (int): ResNet blocks per down level (up levels get one more).
        attention_resolutions (Sequence[int]): Feature-map heights at which the
            level's blocks use self-attention (``AttnDownBlock2D``/``AttnUpBlock2D``);
            level ``i`` has height ``sample_size_h // 2**i``. Every value must match a
            level, otherwise a ``ValueError`` is raised.
        sample_size (int | tuple[int, int]): Nominal training/sampling size ``(H, W)``;
            only used to resolve ``attention_resolutions`` and as the default
            sampling size (the network itself accepts any size).
        norm_num_groups (int): GroupNorm groups; must divide every channel count.
        norm_eps (float): GroupNorm epsilon.
        attention_head_dim (int): Channels per attention head.
        mid_block_attention (bool): Whether the mid block has self-attention.
        dropout (float): Dropout inside the ResNet blocks.
        act_fn (str): Activation (diffusers name).
        flip_sin_to_cos (bool): Sinusoidal timestep-embedding layout (diffusers).
        freq_shift (int): Frequency shift of the timestep embedding (diffusers).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 block_out_channels: Sequence[int] = (128, 128, 256, 256, 512, 512),
                 layers_per_block: int = 2,
                 attention_resolutions: Sequence[int] = (16, ),
                 sample_size: Union[int, Sequence[int]] = 256,
                 norm_num_groups: int = 32,
                 norm_eps: float = 1e-5,
                 attention_head_dim: int = 64,
                 mid_block_attention: bool = True,
                 dropout: float = 0.0,
                 act_fn: str = 'silu',
                 flip_sin_to_cos: bool = True,
                 freq_shift: int = 0) -> None:
        super().__init__()
        block_out_channels = tuple(int(c) for c in block_out_channels)
        if len(block_out_channels) < 1:
            raise ValueError('block_out_channels must not be empty')
        for c in block_out_channels:
            if c % norm_num_groups:
                raise ValueError(f'norm_num_groups={norm_num_groups} must divide every entry of '
                                 f'block_out_channels={block_out_channels}')
            if c % attention_head_dim:
                raise ValueError(f'attention_head_dim={attention_head_dim} must divide every entry '
                                 f'of block_out_channels={block_out_channels}')
        if layers_per_block < 1:
            raise ValueError(f'layers_per_block must be >= 1, got {layers_per_block}')
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.block_out_channels = block_out_channels
        self.layers_per_block = int(layers_per_block)
        self.sample_size = _as_hw(sample_size)

        level_heights = [self.sample_size[0] // 2**i for i in range(len(block_out_channels))]
        unknown = [r for r in attention_resolutions if r not in level_heights]
        if unknown:
            raise ValueError(f'attention_resolutions {list(attention_resolutions)} contains {unknown}, '
                             f'which match no level; level heights are {level_heights} for '
                             f'sample_size={self.sample_size}')
        self.attention_levels = tuple(h in attention_resolutions for h in level_heights)

        c0 = block_out_channels[0]
        time_embed_dim = 4 * c0
        self.conv_in = nn.Conv2d(in_channels, c0, kernel_size=3, padding=1)
        self.time_proj = Timesteps(c0, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(c0, time_embed_dim)

        common = dict(temb_channels=time_embed_dim, resnet_eps=norm_eps, resnet_act_fn=act_fn,
                      resnet_groups=norm_num_groups, attention_head_dim=attention_head_dim,
                      dropout=dropout)
        num_levels = len(block_out_channels)
        self.down_blocks = nn.ModuleList()
        output_channel = c0
        for i, attn in enumerate(self.attention_levels):
            input_channel, output_channel = output_channel, block_out_channels[i]
            self.down_blocks.append(
                get_down_block(
                    'AttnDownBlock2D' if attn else 'DownBlock2D',
                    num_layers=layers_per_block,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    add_downsample=i < num_levels - 1,
                    downsample_padding=1,
                    downsample_type='conv',
                    **common))
        self.mid_block = UNetMidBlock2D(
            in_channels=block_out_channels[-1],
            temb_channels=time_embed_dim,
            dropout=dropout,
            resnet_eps=norm_eps,
            resnet_act_fn=act_fn,
            resnet_groups=norm_num_groups,
            attention_head_dim=attention_head_dim,
            add_attention=mid_block_attention)

        self.up_blocks = nn.ModuleList()
        reversed_channels = block_out_channels[::-1]
        reversed_attn = self.attention_levels[::-1]
        output_channel = reversed_channels[0]
        for i in range(num_levels):
            prev_output_channel, output_channel = output_channel, reversed_channels[i]
            input_channel = reversed_channels[min(i + 1, num_levels - 1)]
            self.up_blocks.append(
                get_up_block(
                    'AttnUpBlock2D' if reversed_attn[i] else 'UpBlock2D',
                    num_layers=layers_per_block + 1,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    prev_output_channel=prev_output_channel,
                    add_upsample=i < num_levels - 1,
                    upsample_type='conv',
                    resolution_idx=i,
                    **common))

        self.conv_norm_out = nn.GroupNorm(norm_num_groups, c0, eps=norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(c0, out_channels, kernel_size=3, padding=1)

    @property
    def skip_channels(self) -> List[int]:
        """Channels of every skip feature returned by :meth:`encode`, in order.

        ``[c0]`` (input conv) then, per level ``i``, ``layers_per_block`` times
        ``block_out_channels[i]`` plus one more for the downsampler (all levels but
        the last).
        """
        chans = [self.block_out_channels[0]]
        for i, c in enumerate(self.block_out_channels):
            chans += [c] * self.layers_per_block
            if i < len(self.block_out_channels) - 1:
                chans.append(c)
        return chans

    @property
    def mid_channels(self) -> int:
        """Channels of the mid-block output."""
        return self.block_out_channels[-1]

    def embed_timesteps(self, timestep: Timestep, batch_size: int, dtype: torch.dtype,
                        device: torch.device) -> torch.Tensor:
        """Timestep embedding.

        Args:
            timestep (Tensor | int | float): Scalar or ``(B,)`` timesteps.
            batch_size (int): ``B``.
            dtype (torch.dtype): dtype of the returned embedding.
            device (torch.device): Device of the returned embedding.

        Returns:
            Tensor: ``(B, 4 * block_out_channels[0])``.
        """
        t = torch.as_tensor(timestep, device=device)
        if t.ndim == 0:
            t = t.expand(batch_size)
        if t.shape != (batch_size, ):
            raise ValueError(f'timestep must be a scalar or have shape ({batch_size},), got {tuple(t.shape)}')
        t_emb = self.time_proj(t).to(dtype)
        return self.time_embedding(t_emb)

    def encode(self,
               sample: torch.Tensor,
               emb: torch.Tensor,
               input_residual: Optional[torch.Tensor] = None
               ) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
        """Input conv, down path and mid block.

        Args:
            sample (Tensor): Noisy input ``(B, in_channels, H, W)``.
            emb (Tensor): Timestep embedding from :meth:`embed_timesteps`.
            input_residual (Tensor, optional): ``(B, c0, H, W)`` added to the
                input-conv output before the down path (the JointNet input exchange).

        Returns:
            tuple: ``(skips, mid)`` where ``skips`` is a tuple of
            ``len(skip_channels)`` feature maps (``skips[0]`` is the input-conv
            output, including ``input_residual``) and ``mid`` is the mid-block
            output ``(B, block_out_channels[-1], h, w)``.
        """
        if sample.ndim != 4 or sample.shape[1] != self.in_channels:
            raise ValueError(f'expected input of shape (B, {self.in_channels}, H, W), '
                             f'got {tuple(sample.shape)}')
        h = self.conv_in(sample)
        if input_residual is not None:
            h = h + input_residual
        skips: Tuple[torch.Tensor, ...] = (h, )
        for block in self.down_blocks:
            h, res = block(hidden_states=h, temb=emb)
            skips += tuple(res)
        mid = self.mid_block(h, emb)
        return skips, mid

    def decode(self, skips: Sequence[torch.Tensor], mid: torch.Tensor,
               emb: torch.Tensor) -> torch.Tensor:
        """Up path and output layers.

        Args:
            skips (Sequence[Tensor]): Skip features as returned by :meth:`encode`
                (possibly with exchange residuals added).
            mid (Tensor): Mid feature (possibly with an exchange residual added).
            emb (Tensor): Timestep embedding.

        Returns:
            Tensor: ``(B, out_channels, H, W)``.
        """
        skips = tuple(skips)
        h = mid
        for block in self.up_blocks:
            n = len(block.resnets)
            res, skips = skips[-n:], skips[:-n]
            h = block(h, res, emb)
            if skips:  # crop the 2x-upsampled map to the next skip (odd sizes)
                th, tw = skips[-1].shape[-2:]
                h = h[..., :th, :tw]
        h = self.conv_act(self.conv_norm_out(h))
        return self.conv_out(h)

    def forward(self, sample: torch.Tensor, timestep: Timestep) -> torch.Tensor:
        """Stand-alone denoiser (no exchange).

        Args:
            sample (Tensor): ``(B, in_channels, H, W)``.
            timestep (Tensor | int): Scalar or ``(B,)``.

        Returns:
            Tensor: ``(B, out_channels, H, W)``.
        """
        emb = self.embed_timesteps(timestep, sample.shape[0], sample.dtype, sample.device)
        skips, mid = self.encode(sample, emb)
        return self.decode(skips, mid, emb)


class JointExchange(nn.Module):
    """Zero-initialised layers that carry one branch's signals INTO the other.

    Args:
        source_in_channels (int): Channels of the source branch's noisy input.
        target_in_features (int): Channels of the target's input-conv output (``c0``).
        skip_channels (Sequence[int]): Channels of the skip features (identical in
            both branches: they share the architecture).
        mid_channels (int): Channels of the mid features.
    """

    def __init__(self, source_in_channels: int, target_in_features: int,
                 skip_channels: Sequence[int], mid_channels: int) -> None:
        super().__init__()
        self.input_conv = nn.Conv2d(source_in_channels, target_in_features, 3, padding=1)
        self.skip_convs = nn.ModuleList(nn.Conv2d(c, c, 1) for c in skip_channels)
        self.mid_conv = nn.Conv2d(mid_channels, mid_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re-)zero every exchange layer."""
        zero_module(self)

    def input_residual(self, source_sample: torch.Tensor) -> torch.Tensor:
        """Residual for the target's input-conv output from the source's noisy input."""
        return self.input_conv(source_sample)

    def add_skips(self, target_skips: Sequence[torch.Tensor],
                  source_skips: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """``target_skips[i] + skip_convs[i](source_skips[i])`` for every skip."""
        if not len(target_skips) == len(source_skips) == len(self.skip_convs):
            raise ValueError(f'skip counts differ: target {len(target_skips)}, source '
                             f'{len(source_skips)}, exchange {len(self.skip_convs)}')
        return tuple(t + conv(s) for t, s, conv in zip(target_skips, source_skips, self.skip_convs))

    def add_mid(self, target_mid: torch.Tensor, source_mid: torch.Tensor) -> torch.Tensor:
        """``target_mid + mid_conv(source_mid)``."""
        return target_mid + self.mid_conv(source_mid)


class JointUNet(nn.Module):
    """SAR-Net + Label-Net with JointNet-style exchange in both directions.

    Args:
        image_channels (int): Channels of the SAR image (1 for grayscale SAR).
        label_channels (int): Channels of the label branch (number of classes K);
            Label-Net outputs K logits.
        unet_cfg (dict): Keyword arguments of :class:`DiffusionUNet` shared by both
            branches (everything but ``in_channels``/``out_channels``).
    """

    def __init__(self, image_channels: int, label_channels: int, unet_cfg: Optional[Dict] = None) -> None:
        super().__init__()
        unet_cfg = dict(unet_cfg or {})
        for key in ('in_channels', 'out_channels'):
            if key in unet_cfg:
                raise ValueError(f'unet_cfg must not set {key!r}; it follows image_channels/num_classes')
        self.image_channels = int(image_channels)
        self.label_channels = int(label_channels)
        self.sar_net = DiffusionUNet(image_channels, image_channels, **unet_cfg)
        self.label_net = DiffusionUNet(label_channels, label_channels, **unet_cfg)
        c0 = self.sar_net.block_out_channels[0]
        skip_channels = self.sar_net.skip_channels
        mid_channels = self.sar_net.mid_channels
        self.exchange_to_sar = JointExchange(label_channels, c0, skip_channels, mid_channels)
        self.exchange_to_label = JointExchange(image_channels, c0, skip_channels, mid_channels)

    def reset_exchange(self) -> None:
        """Zero all exchange layers (both directions)."""
        self.exchange_to_sar.reset_parameters()
        self.exchange_to_label.reset_parameters()

    @torch.no_grad()
    def init_label_net_from_sar_net(self, reset_exchange: bool = True) -> None:
        """Copy SAR-Net's weights into Label-Net, except its input/output layers.

        ``conv_in`` and ``conv_out`` of Label-Net (K channels) are re-initialised
        with PyTorch's default initialisation; every other tensor is copied. All
        updates are in place, so parameter objects (and an optimizer built on
        them) stay valid.

        Args:
            reset_exchange (bool): Also re-zero the exchange layers, so that the
                joint model's image output equals SAR-Net's exactly afterwards.
        """
        own = ('conv_in.', 'conv_out.')
        state = {k: v for k, v in self.sar_net.state_dict().items() if not k.startswith(own)}
        result = self.label_net.load_state_dict(state, strict=False)
        expected_missing = {k for k in self.label_net.state_dict() if k.startswith(own)}
        if result.unexpected_keys or set(result.missing_keys) != expected_missing:
            raise RuntimeError('SAR-Net and Label-Net architectures differ: unexpected '
                               f'{result.unexpected_keys}, missing {result.missing_keys}')
        self.label_net.conv_in.reset_parameters()
        self.label_net.conv_out.reset_parameters()
        if reset_exchange:
            self.reset_exchange()

    def forward_sar(self, image_sample: torch.Tensor, timestep: Timestep) -> torch.Tensor:
        """SAR-Net alone (stage 1): ``(B, C_img, H, W) -> (B, C_img, H, W)``."""
        return self.sar_net(image_sample, timestep)

    def forward(self, image_sample: torch.Tensor, label_sample: torch.Tensor,
                timestep: Timestep) -> Tuple[torch.Tensor, torch.Tensor]:
        """Joint denoising step.

        Args:
            image_sample (Tensor): Noisy SAR image ``(B, C_img, H, W)``.
            label_sample (Tensor): Noisy scaled mask ``(B, K, H, W)``.
            timestep (Tensor | int): Scalar or ``(B,)``, shared by both branches.

        Returns:
            tuple[Tensor, Tensor]: SAR-Net output ``(B, C_img, H, W)`` (x0
            prediction) and Label-Net output ``(B, K, H, W)`` (logits).
        """
        if image_sample.shape[0] != label_sample.shape[0] or \
                image_sample.shape[-2:] != label_sample.shape[-2:]:
            raise ValueError(f'image {tuple(image_sample.shape)} and label '
                             f'{tuple(label_sample.shape)} batch/size differ')
        b, dtype, device = image_sample.shape[0], image_sample.dtype, image_sample.device
        emb_s = self.sar_net.embed_timesteps(timestep, b, dtype, device)
        emb_l = self.label_net.embed_timesteps(timestep, b, dtype, device)
        skips_s, mid_s = self.sar_net.encode(
            image_sample, emb_s, self.exchange_to_sar.input_residual(label_sample))
        skips_l, mid_l = self.label_net.encode(
            label_sample, emb_l, self.exchange_to_label.input_residual(image_sample))
        out_s = self.sar_net.decode(
            self.exchange_to_sar.add_skips(skips_s, skips_l),
            self.exchange_to_sar.add_mid(mid_s, mid_l), emb_s)
        out_l = self.label_net.decode(
            self.exchange_to_label.add_skips(skips_l, skips_s),
            self.exchange_to_label.add_mid(mid_l, mid_s), emb_l)
        return out_s, out_l
