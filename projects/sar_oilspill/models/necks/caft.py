"""Context-Aware Feature Transfer (CAFT) block, paper Sec. 3.3.1.

CAFT is a *cross*-attention version of Restormer's Multi-Dconv-head Transposed
Attention (MDTA, Zamir et al. 2022): the Query comes from the upsampled
low-resolution (LR) features, which carry semantics, and the Key/Value come
from the high-resolution (HR) features, which carry the spatial detail (and the SAR
speckle) to be filtered. The attention map is built across channels
(``C/heads x C/heads`` per head), so its cost is linear in ``H*W``.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS

from ..utils.layer_norm import LayerNorm2d  # Restormer's WithBias_LayerNorm


class GatedDConvFFN(nn.Module):
    """Restormer's Gated-Dconv Feed-Forward Network (GDFN).

    ``1x1 (C -> 2h)`` -> depthwise ``3x3`` -> ``GELU(x1) * x2`` ->
    ``1x1 (h -> C)`` with ``h = int(C * expansion_factor)``.

    Args:
        channels (int): Input/output channels ``C``.
        expansion_factor (float): Hidden width ratio (Restormer uses 2.66).
        bias (bool): Whether the convolutions have a bias.
    """

    def __init__(self, channels: int, expansion_factor: float,
                 bias: bool = False) -> None:
        super().__init__()
        hidden = int(channels * expansion_factor)
        if hidden < 1:
            raise ValueError(f'GatedDConvFFN: expansion_factor='
                             f'{expansion_factor} gives hidden width {hidden} '
                             f'for {channels} channels; expected >= 1')
        self.project_in = nn.Conv2d(channels, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2,
            bias=bias)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): (B, C, H, W). Returns: Tensor: (B, C, H, W)."""
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


@MODELS.register_module()
class CAFTBlock(BaseModule):
    """Context-Aware Feature Transfer block (transposed cross-attention).

    With ``C = hr_channels``, ``Ca = attn_channels`` (``C`` by default) and
    ``c = Ca / num_heads``::

        q  = DWConv3x3(Up(Conv1x1_{C_lr->Ca}(LN(lr))))     (B, Ca, H, W)
        k, v = split(DWConv3x3(Conv1x1_{C->2Ca}(LN(hr))))  (B, Ca, H, W) each
        per head:  q_h, k_h, v_h reshaped to (c, H*W)
                   A_h = softmax(t_h * l2n(q_h) @ l2n(k_h)^T)   (c, c)
                   o_h = A_h @ v_h                              (c, H*W)
        y  = hr + Conv1x1_{Ca->C}(concat_h o_h)
        y  = y + GDFN(LN(y))            (only if ffn_expansion_factor > 0)

    ``l2n`` normalises along the spatial dimension and ``t_h`` is a learnable
    temperature per head (initialised to 1), exactly as in Restormer's MDTA.
    The map ``A_h`` is ``c x c``: memory ``O(C^2)`` and compute
    ``O(C^2 * H * W / num_heads)``, linear in ``H*W``.

    Query channel mismatch: the LR features (``lr_channels``) are projected to
    ``hr_channels`` by the Query's 1x1 convolution. The brief is "bilinear
    upsampling, then 1x1"; this block applies the 1x1 at LR resolution and
    upsamples afterwards. The two orders give the same result: bilinear
    interpolation acts on each channel separately with weights that sum to 1,
    and a 1x1 convolution acts on each pixel separately, so the two commute
    (bias included). Projecting first needs ``(H*W)/(h*w)`` (about 4x) fewer
    FLOPs. ``tests/test_models/test_caft.py`` checks this against an
    upsample-first reference.

    Norm choice: pre-norm with a per-pixel LayerNorm over channels (Restormer's
    WithBias LayerNorm), not GroupNorm/BatchNorm. It does not depend on the
    batch (batch 1 and 2x2 mosaics train the same as large batches; train and
    eval behave the same), and it normalises each pixel on its own. GroupNorm
    would share statistics over the whole image, which in SAR scenes is mostly
    sea clutter, and would shrink the contrast of small dark slicks and ships.

    Projections have no bias by default (Restormer's ``bias=False``) to keep
    the parameter count small. Parameters per block:
    ``Ca*(C_lr + 3C) + 27Ca + heads + 2(C_lr + C)`` without FFN. With
    ``Ca = C`` (MDTA's width) a node at MambaVision-B's deepest skip
    (C = 512, C_lr = 1024) has 1.3 M parameters; ``Ca = C / 4`` cuts every
    projection by 4 while the attention still mixes all ``C`` HR channels
    through ``k``/``v`` and writes back to all of them.

    Args:
        hr_channels (int): Channels ``C`` of the HR (Key/Value) input. The
            output has the same number of channels.
        lr_channels (int): Channels ``C_lr`` of the LR (Query) input.
        num_heads (int): Number of attention heads; must divide
            ``attn_channels``. Defaults to 1.
        attn_channels (int, optional): Width ``Ca`` of Query/Key/Value (the
            attention runs in ``Ca`` channels, ``project_out`` maps back to
            ``C``). Defaults to None: ``hr_channels``, as in MDTA.
        ffn_expansion_factor (float): Hidden ratio of the optional GDFN after
            the attention; 0 disables it. Defaults to 0 (no FFN, for a small
            parameter count).
        bias (bool): Bias in the projections. Defaults to False.
        align_corners (bool): ``align_corners`` of the bilinear upsampling.
            Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 hr_channels: int,
                 lr_channels: int,
                 num_heads: int = 1,
                 ffn_expansion_factor: float = 0.,
                 bias: bool = False,
                 align_corners: bool = False,
                 attn_channels: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if hr_channels < 1 or lr_channels < 1:
            raise ValueError(f'CAFTBlock: hr_channels={hr_channels} and '
                             f'lr_channels={lr_channels} must be >= 1')
        if attn_channels is None:
            attn_channels = hr_channels
        if attn_channels < 1:
            raise ValueError(f'CAFTBlock: attn_channels={attn_channels} must '
                             'be >= 1')
        if num_heads < 1 or attn_channels % num_heads != 0:
            raise ValueError(f'CAFTBlock: num_heads={num_heads} must be >= 1 '
                             f'and divide attn_channels={attn_channels}')
        if ffn_expansion_factor < 0:
            raise ValueError(f'CAFTBlock: ffn_expansion_factor='
                             f'{ffn_expansion_factor} must be >= 0')
        self.hr_channels = hr_channels
        self.lr_channels = lr_channels
        self.attn_channels = attn_channels
        self.num_heads = num_heads
        self.align_corners = align_corners

        self.norm_lr = LayerNorm2d(lr_channels)
        self.norm_hr = LayerNorm2d(hr_channels)
        ca = attn_channels
        # Query: LR semantics, projected to the attention width.
        self.q_proj = nn.Conv2d(lr_channels, ca, 1, bias=bias)
        self.q_dwconv = nn.Conv2d(
            ca, ca, 3, padding=1, groups=ca, bias=bias)
        # Key and Value: HR details (MDTA's qkv + qkv_dwconv without the q).
        self.kv_proj = nn.Conv2d(hr_channels, ca * 2, 1, bias=bias)
        self.kv_dwconv = nn.Conv2d(
            ca * 2, ca * 2, 3, padding=1, groups=ca * 2, bias=bias)
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.project_out = nn.Conv2d(ca, hr_channels, 1, bias=bias)

        if ffn_expansion_factor > 0:
            self.norm_ffn = LayerNorm2d(hr_channels)
            self.ffn = GatedDConvFFN(hr_channels, ffn_expansion_factor, bias)
        else:
            self.norm_ffn = None
            self.ffn = None

    def forward(self, hr: Tensor, lr: Tensor) -> Tensor:
        """Transfer HR features under the guidance of LR context.

        Args:
            hr (Tensor): High-resolution features, (B, C, H, W).
            lr (Tensor): Low-resolution features, (B, C_lr, h, w); any
                ``h, w`` (upsampled bilinearly to ``H, W``).

        Returns:
            Tensor: Transferred HR features, (B, C, H, W).
        """
        if hr.dim() != 4 or hr.shape[1] != self.hr_channels:
            raise ValueError(f'CAFTBlock: hr must be (B, {self.hr_channels}, '
                             f'H, W), got {tuple(hr.shape)}')
        if lr.dim() != 4 or lr.shape[1] != self.lr_channels or \
                lr.shape[0] != hr.shape[0]:
            raise ValueError(f'CAFTBlock: lr must be ({hr.shape[0]}, '
                             f'{self.lr_channels}, h, w), got '
                             f'{tuple(lr.shape)}')
        b, _, h, w = hr.shape
        c = self.attn_channels
        # Query from the upsampled LR features (1x1 before upsampling: equal).
        q = self.q_proj(self.norm_lr(lr))
        if q.shape[-2:] != hr.shape[-2:]:
            q = F.interpolate(
                q, size=(h, w), mode='bilinear',
                align_corners=self.align_corners)
        q = self.q_dwconv(q)
        # Key / Value from the HR features.
        k, v = self.kv_dwconv(self.kv_proj(self.norm_hr(hr))).chunk(2, dim=1)

        heads = self.num_heads
        q = q.reshape(b, heads, c // heads, h * w)
        k = k.reshape(b, heads, c // heads, h * w)
        v = v.reshape(b, heads, c // heads, h * w)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature  # (b, heads, c, c)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).reshape(b, c, h, w)
        x = hr + self.project_out(out)
        if self.ffn is not None:
            x = x + self.ffn(self.norm_ffn(x))
        return x
