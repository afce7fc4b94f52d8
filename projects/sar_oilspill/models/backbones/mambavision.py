"""MambaVision backbone (Hatamizadeh & Kautz, 2024) in native PyTorch for MMSegmentation.

SAROSS-Net's encoder (paper Sec. 3.3) is an ImageNet-pretrained MambaVision-B. This module
rebuilds the NVlabs network (``mambavision/models/mamba_vision.py``, mambavision 1.2.0) without
timm, einops or mamba-ssm, with parameter names and shapes identical to the NVlabs checkpoints,
so their ``.pth.tar`` files load unchanged. The selective scan comes from
:mod:`.selective_scan` (mamba-ssm's CUDA kernel when installed, a chunked PyTorch scan
otherwise).

Layout (``dim`` = C)::

    patch_embed  conv3x3 s2 (in->in_dim) BN ReLU, conv3x3 s2 (in_dim->C) BN ReLU      stride 4
    levels.0     ConvBlocks on C          -> feature 0 (stride 4)  -> downsample -> 2C
    levels.1     ConvBlocks on 2C         -> feature 1 (stride 8)  -> downsample -> 4C
    levels.2     windowed token blocks 4C -> feature 2 (stride 16) -> downsample -> 8C
    levels.3     windowed token blocks 8C -> feature 3 (stride 32)

In a token level of depth ``d`` the first ``ceil(d/2)`` blocks (``d`` odd: ``d//2 + 1``) mix
tokens with :class:`MambaVisionMixer`, the rest with self-attention.

Output size rule: for an input of H x W (any H, W >= 1) feature ``i`` has spatial size
``ceil(H / 2**(i+2)) x ceil(W / 2**(i+2))``. No input padding is needed: every stride-2 conv
is 3x3 with padding 1, which maps ``n`` to ``ceil(n / 2)``, and ``ceil(ceil(n/2^k)/2) =
ceil(n/2^(k+1))``.

Windows of the token levels (``window_padding``):

* ``'mask'`` (default): a window never holds padding tokens in effect. A level map smaller
  than the window in a dimension gets a window of the map's size there (a map within the
  window is one whole-map window, with no padding at all). Where the map is larger than the
  window and not a multiple of it, the map is padded at the bottom/right, and in every edge
  window the valid tokens are moved to the front of the window's sequence (row-major over
  the valid part) and the padding is masked: attention ignores padded keys and the Mamba
  mixer zeroes them before its (non-causal, kernel-3) conv1d, and the scan is causal, so
  every window computes exactly what it would compute holding its valid tokens only.
* ``'zeros'``: NVlabs' code: square windows, zero padding that takes part in the attention
  and the scan (different features near the padded edge).

With ``'mask'`` the windows only matter where a level map is larger than them: choose them
per input size, e.g. the level map of the training crop (``(8, 8, 32, 16)`` for 512 crops,
``(8, 8, 16, 8)`` for 256 tiles). The windows hold no parameters: every choice loads the
same checkpoint.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg.registry import MODELS
from ..utils.layer_norm import LayerNorm2d  # NVlabs' ``ln2d`` output norm
from .mambavision_checkpoint import CLASSIFIER_PREFIXES, check_encoder_weights, load_pretrained
from .selective_scan import selective_scan_fn

# NVlabs variants (mambavision 1.2.0, mamba_vision.py). Windows are the ImageNet ones; NVlabs'
# ADE20K configs override them (B at 512x512: window_size=(8, 8, 64, 32)).
ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(dim=80, in_dim=32, depths=(1, 3, 8, 4), num_heads=(2, 4, 8, 16),
                 window_size=(8, 8, 14, 7), layer_scale=None),
    'tiny2': dict(dim=80, in_dim=32, depths=(1, 3, 11, 4), num_heads=(2, 4, 8, 16),
                  window_size=(8, 8, 14, 7), layer_scale=None),
    'small': dict(dim=96, in_dim=64, depths=(3, 3, 7, 5), num_heads=(2, 4, 8, 16),
                  window_size=(8, 8, 14, 7), layer_scale=None),
    'base': dict(dim=128, in_dim=64, depths=(3, 3, 10, 5), num_heads=(2, 4, 8, 16),
                 window_size=(8, 8, 14, 7), layer_scale=1e-5),
    'large': dict(dim=196, in_dim=64, depths=(3, 3, 10, 5), num_heads=(4, 8, 16, 32),
                  window_size=(8, 8, 14, 7), layer_scale=1e-5),
    'large2': dict(dim=196, in_dim=64, depths=(3, 3, 12, 5), num_heads=(4, 8, 16, 32),
                   window_size=(8, 8, 14, 7), layer_scale=1e-5),
    # tiny variant for unit tests: every block type, window padding at small inputs.
    'test': dict(dim=16, in_dim=8, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4),
                 window_size=(4, 4, 4, 2), layer_scale=1e-5),
}

def window_partition(x: Tensor, window_size: int, window_w: Optional[int] = None) -> Tensor:
    """Split a feature map into non-overlapping windows of tokens (row-major inside a window).

    Args:
        x (Tensor): (B, C, H, W), H a multiple of ``window_size``, W of ``window_w``.
        window_size (int): window height (and width unless ``window_w`` is given).
        window_w (int, optional): window width. Defaults to ``window_size``.

    Returns:
        Tensor: (B * H/wh * W/ww, wh * ww, C), windows in row-major order per image.
    """
    wh, ww = window_size, window_w or window_size
    b, c, h, w = x.shape
    x = x.view(b, c, h // wh, wh, w // ww, ww)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, wh * ww, c)


def window_reverse(windows: Tensor, window_size: int, h: int, w: int,
                   window_w: Optional[int] = None) -> Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows (Tensor): (B * h/wh * w/ww, wh * ww, C).
        window_size (int): window height (and width unless ``window_w`` is given).
        h (int): padded height.
        w (int): padded width.
        window_w (int, optional): window width. Defaults to ``window_size``.

    Returns:
        Tensor: (B, C, h, w).
    """
    wh, ww = window_size, window_w or window_size
    c = windows.shape[2]
    b = windows.shape[0] // ((h // wh) * (w // ww))
    x = windows.reshape(b, h // wh, w // ww, wh, ww, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


def valid_first_order(h: int, w: int, wh: int, ww: int,
                      device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
    """Token order that puts each window's valid tokens first (``window_padding='mask'``).

    The map (h, w) is padded to multiples of (wh, ww) and split by :func:`window_partition`.
    In window (p, q) the valid part is ``min(wh, h - p wh) x min(ww, w - q ww)``.

    Returns:
        tuple[Tensor, Tensor]: ``order`` (nW, wh*ww) long, the within-window token indices
        with the valid ones first (row-major over the valid part, i.e. the order of that
        part alone) and the padding last; ``valid`` (nW, wh*ww) bool, True on the first
        (number of valid tokens) positions of the reordered windows.
    """
    nh, nw = -(-h // wh), -(-w // ww)
    rows = torch.arange(wh, device=device).view(1, wh, 1)
    cols = torch.arange(ww, device=device).view(1, 1, ww)
    vh = (h - torch.arange(nh, device=device) * wh).clamp(max=wh)  # valid rows per window row
    vw = (w - torch.arange(nw, device=device) * ww).clamp(max=ww)
    vh = vh.view(nh, 1).expand(nh, nw).reshape(-1, 1, 1)
    vw = vw.view(1, nw).expand(nh, nw).reshape(-1, 1, 1)
    is_valid = ((rows < vh) & (cols < vw)).reshape(nh * nw, wh * ww)
    local = torch.arange(wh * ww, device=device)
    order = torch.argsort(local + (~is_valid).long() * (wh * ww), dim=1)
    valid = local.view(1, -1) < (vh * vw).view(-1, 1)
    return order, valid


def _build_norm(cfg: dict, num_features: int) -> nn.Module:
    """Build a norm from a config; ``type='LN2d'`` gives :class:`LayerNorm2d`."""
    cfg = dict(cfg)
    if cfg.get('type') == 'LN2d':
        cfg.pop('type')
        cfg.pop('requires_grad', None)
        return LayerNorm2d(num_features, **cfg)
    return build_norm_layer(cfg, num_features)[1]


class PatchEmbed(nn.Module):
    """Stem: two conv3x3 stride-2 + norm + ReLU (stride 4). Keys ``conv_down.{0,1,3,4}``."""

    def __init__(self, in_channels: int, in_dim: int, dim: int, norm_cfg: dict) -> None:
        super().__init__()
        norm_cfg = dict(norm_cfg)
        norm_cfg.setdefault('eps', 1e-4)  # NVlabs uses BatchNorm2d(eps=1e-4) in the stem
        self.conv_down = nn.Sequential(
            nn.Conv2d(in_channels, in_dim, 3, 2, 1, bias=False),
            _build_norm(norm_cfg, in_dim),
            nn.ReLU(),
            nn.Conv2d(in_dim, dim, 3, 2, 1, bias=False),
            _build_norm(norm_cfg, dim),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_down(x)


class Downsample(nn.Module):
    """conv3x3 stride 2, C -> 2C, no bias. Key ``reduction.0``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Sequential(nn.Conv2d(dim, 2 * dim, 3, 2, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.reduction(x)


class ConvBlock(nn.Module):
    """Residual conv3x3-norm-GELU(tanh)-conv3x3-norm block of levels 0 and 1."""

    def __init__(self,
                 dim: int,
                 norm_cfg: dict,
                 drop_path: float = 0.,
                 layer_scale: Optional[float] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 1)
        self.norm1 = _build_norm(norm_cfg, dim)
        self.act1 = nn.GELU(approximate='tanh')
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1)
        self.norm2 = _build_norm(norm_cfg, dim)
        if layer_scale is not None:
            self.gamma = nn.Parameter(layer_scale * torch.ones(dim))
        else:
            self.gamma = None
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        if self.gamma is not None:
            x = x * self.gamma.view(1, -1, 1, 1)
        return shortcut + self.drop_path(x)


class MambaVisionMixer(nn.Module):
    """MambaVision's token mixer: an SSM branch and a symmetric gate branch, concatenated.

    ``in_proj`` (C -> C) splits into x, z (C/2 each); both get a depthwise conv1d (no bias,
    'same' padding) and SiLU; x goes through the selective scan (state size ``d_state``),
    z does not; ``out_proj`` maps ``[y, z]`` back to C.

    Args:
        d_model (int): token width C (even).
        d_state (int): SSM state size N. Defaults to 8.
        d_conv (int): conv1d kernel size. Defaults to 3.
        dt_rank (int, optional): rank of the step-size projection; None: ``ceil(C / 16)``.
        dt_min (float): smallest initial step size. Defaults to 0.001.
        dt_max (float): largest initial step size. Defaults to 0.1.
        dt_init_floor (float): floor of the initial step size. Defaults to 1e-4.
    """

    def __init__(self,
                 d_model: int,
                 d_state: int = 8,
                 d_conv: int = 3,
                 dt_rank: Optional[int] = None,
                 dt_min: float = 0.001,
                 dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4) -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f'MambaVisionMixer: d_model must be even, got {d_model}')
        self.d_model = d_model
        self.d_state = d_state
        self.d_inner = d_model  # expand = 1
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        half = self.d_inner // 2
        self.in_proj = nn.Linear(d_model, self.d_inner, bias=False)
        self.x_proj = nn.Linear(half, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, half, bias=True)
        # Mamba's step-size init: weight ~ U(+-rank^-0.5), softplus(bias) ~ logU[dt_min, dt_max].
        dt_init_std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)
        dt = torch.exp(
            torch.rand(half) * (math.log(dt_max) - math.log(dt_min)) +
            math.log(dt_min)).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.dt_proj.bias._no_reinit = True
        # S4D-real init: A = -(1, 2, ..., N) per channel.
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(half, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(half))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.conv1d_x = nn.Conv1d(half, half, d_conv, groups=half, bias=False)
        self.conv1d_z = nn.Conv1d(half, half, d_conv, groups=half, bias=False)

    def forward(self, hidden_states: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        """Mix tokens.

        Args:
            hidden_states (Tensor): (B, L, C).
            valid (Tensor, optional): (B, L) bool, True on a prefix of each sequence (the valid
                tokens, padding after them). The padding is zeroed before the conv1d, so the
                valid tokens see the conv's zero padding as in their sequence alone; the scan is
                causal, so padding after them cannot reach them. None: all tokens valid.

        Returns:
            Tensor: (B, L, C); outputs at padded positions are meaningless.
        """
        _, length, _ = hidden_states.shape
        half = self.d_inner // 2
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (B, C, L)
        if valid is not None:
            xz = xz * valid.unsqueeze(1).to(xz.dtype)
        x, z = xz.chunk(2, dim=1)
        A = -torch.exp(self.A_log.float())  # (C/2, N)
        x = F.silu(F.conv1d(x, self.conv1d_x.weight, padding='same', groups=half))
        z = F.silu(F.conv1d(z, self.conv1d_z.weight, padding='same', groups=half))
        x_dbl = self.x_proj(x.transpose(1, 2))  # (B, L, rank + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        # NVlabs applies dt_proj WITH its bias here and passes the bias again as delta_bias,
        # so the checkpoints were trained with delta = softplus(W dt + 2 b); kept for fidelity.
        dt = self.dt_proj(dt).transpose(1, 2)  # (B, C/2, L)
        # no .contiguous(): mamba-ssm makes its inputs contiguous itself, and the CPU scan
        # reads them transposed in its first pass anyway
        y = selective_scan_fn(
            x,
            dt,
            A,
            B.transpose(1, 2),  # (B, N, L)
            C.transpose(1, 2),
            self.D.float(),
            z=None,
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True)
        # concatenated channels-last, the layout out_proj needs (the CPU scan returns y as a
        # view of (B, L, C/2) memory, so its half is a plain copy)
        y = torch.cat([y.to(z.dtype).transpose(1, 2), z.transpose(1, 2)], dim=2)  # (B, L, C)
        return self.out_proj(y)


class Attention(nn.Module):
    """Multi-head self-attention in a window (qkv Linear + scaled_dot_product_attention)."""

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'Attention: dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        """Args: x (Tensor): (B, N, C); valid (Tensor, optional): (B, N) bool, the keys that
        may be attended to (None: all). Returns: Tensor: (B, N, C)."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if valid is None else valid[:, None, None, :],
            dropout_p=self.attn_drop if self.training else 0.)
        x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 - GELU - dropout - fc2 - dropout."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class MambaVisionBlock(nn.Module):
    """Pre-norm token block: ``x + gamma_1 * mixer(LN(x))``, ``x + gamma_2 * mlp(LN(x))``.

    Args:
        dim (int): token width.
        num_heads (int): attention heads (attention blocks only).
        use_attention (bool): self-attention mixer instead of :class:`MambaVisionMixer`.
        mlp_ratio (float): MLP hidden width / dim.
        qkv_bias (bool): bias in the qkv projection.
        drop (float): dropout after projections.
        attn_drop (float): attention dropout.
        drop_path (float): stochastic depth rate.
        layer_scale (float, optional): init of the ``gamma_1``/``gamma_2`` parameters; None:
            no layer scale (and no such parameters).
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 use_attention: bool,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop: float = 0.,
                 attn_drop: float = 0.,
                 drop_path: float = 0.,
                 layer_scale: Optional[float] = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        if use_attention:
            self.mixer = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        else:
            self.mixer = MambaVisionMixer(dim, d_state=8, d_conv=3)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        if layer_scale is not None:
            self.gamma_1 = nn.Parameter(layer_scale * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layer_scale * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        """Args: x (Tensor): (B, N, C); valid (Tensor, optional): (B, N) bool, a prefix of
        valid tokens per sequence (see :class:`MambaVisionMixer`). Returns: (B, N, C)."""
        y = self.mixer(self.norm1(x), valid)
        x = x + self.drop_path(y if self.gamma_1 is None else self.gamma_1 * y)
        y = self.mlp(self.norm2(x))
        return x + self.drop_path(y if self.gamma_2 is None else self.gamma_2 * y)


class MambaVisionLayer(nn.Module):
    """One level: blocks (conv or windowed token blocks) and an optional downsample.

    Args:
        dim (int): channels of the level.
        depth (int): number of blocks.
        num_heads (int): attention heads (token levels).
        window_size (int): window side (token levels).
        window_padding (str): 'mask' or 'zeros' (see the module docstring).
        conv (bool): ConvBlocks (levels 0-1) instead of token blocks.
        downsample (bool): end with a stride-2 conv (dim -> 2 dim).
        norm_cfg (dict): norm of the ConvBlocks.
        drop_path (list[float]): stochastic depth rate per block.
        layer_scale (float, optional): token-block layer scale init.
        layer_scale_conv (float, optional): ConvBlock layer scale init.
        with_cp (bool): gradient checkpointing per block.
        **block_kwargs: mlp_ratio, qkv_bias, drop, attn_drop of the token blocks.
    """

    def __init__(self,
                 dim: int,
                 depth: int,
                 num_heads: int,
                 window_size: int,
                 conv: bool,
                 downsample: bool,
                 norm_cfg: dict,
                 drop_path: Sequence[float],
                 layer_scale: Optional[float] = None,
                 layer_scale_conv: Optional[float] = None,
                 with_cp: bool = False,
                 window_padding: str = 'mask',
                 **block_kwargs) -> None:
        super().__init__()
        self.conv = conv
        self.window_size = window_size
        self.window_padding = window_padding
        self.with_cp = with_cp
        if conv:
            self.blocks = nn.ModuleList([
                ConvBlock(dim, norm_cfg, drop_path[i], layer_scale_conv) for i in range(depth)
            ])
        else:
            # NVlabs: the second half of the level is self-attention (the larger half if odd).
            first_attn = depth // 2 + 1 if depth % 2 else depth // 2
            self.blocks = nn.ModuleList([
                MambaVisionBlock(
                    dim,
                    num_heads,
                    use_attention=i >= first_attn,
                    drop_path=drop_path[i],
                    layer_scale=layer_scale,
                    **block_kwargs) for i in range(depth)
            ])
        self.downsample = Downsample(dim) if downsample else None

    def forward_blocks(self, x: Tensor) -> Tensor:
        """Run the blocks (window partition/pad/crop for token levels).

        Args:
            x (Tensor): (B, C, H, W).

        Returns:
            Tensor: (B, C, H, W), the level's feature before the downsample.
        """
        if self.conv:
            for blk in self.blocks:
                x = self._run(blk, x)
            return x
        b, _, h, w = x.shape
        ws = self.window_size
        if self.window_padding == 'mask':  # a map smaller than the window: a whole-map window
            wh, ww = min(ws, h), min(ws, w)
        else:
            wh = ww = ws
        pad_b, pad_r = (wh - h % wh) % wh, (ww - w % ww) % ww
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        x = window_partition(x, wh, ww)
        valid = order = None
        if (pad_b or pad_r) and self.window_padding == 'mask':
            order, valid = valid_first_order(h, w, wh, ww, device=x.device)
            order = order.repeat(b, 1)  # windows of image 0, then image 1, ...
            valid = valid.repeat(b, 1)
            x = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        for blk in self.blocks:
            x = self._run(blk, x, valid)
        if order is not None:  # back to the row-major window layout
            x = torch.empty_like(x).scatter_(1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x)
        x = window_reverse(x, wh, hp, wp, ww)
        if pad_b or pad_r:
            x = x[:, :, :h, :w].contiguous()
        return x

    def _run(self, blk: nn.Module, x: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        if self.with_cp and x.requires_grad:
            if valid is None:
                return cp.checkpoint(blk, x, use_reentrant=False)
            return cp.checkpoint(blk, x, valid, use_reentrant=False)
        return blk(x) if valid is None else blk(x, valid)


@MODELS.register_module()
class MambaVision(BaseModule):
    """MambaVision backbone, state-dict compatible with the NVlabs checkpoints.

    Parameter names follow NVlabs (``patch_embed.conv_down.*``, ``levels.{i}.blocks.{j}.*``,
    ``levels.{i}.downsample.reduction.0.*``); the classifier's ``norm.*``/``head.*`` are absent
    and ignored when loading. Optional output norms are named ``outnorm{i}`` as in NVlabs'
    mmseg wrapper. Output sizes: see the module docstring (``ceil(H / 2**(i+2))``).

    Args:
        arch (str | dict): 'tiny', 'tiny2', 'small', 'base', 'large', 'large2' (NVlabs T, T2,
            S, B, L, L2) or 'test' (unit tests); or a dict with keys ``dim``, ``in_dim``,
            ``depths``, ``num_heads`` and optionally ``window_size``, ``layer_scale``.
            Defaults to 'base'.
        in_channels (int): input channels. Defaults to 3.
        window_size (int | Sequence[int], optional): window side per level (levels 0-1 are
            convolutional and ignore it); an int applies to all levels. None: the arch's
            ImageNet windows (8, 8, 14, 7). Windows hold no parameters, so any value loads
            the same checkpoint (NVlabs' ADE20K-512 configs use (8, 8, 64, 32)). With
            ``window_padding='mask'`` a window larger than a level map shrinks to the map.
        window_padding (str): 'mask' (default): no padding where a level map fits in its
            window, and padded tokens masked out of attention and scan elsewhere, so each
            window computes what it computes on its valid tokens alone; 'zeros': NVlabs'
            zero padding (padding tokens take part). See the module docstring.
        layer_scale (float | None | str): token-block layer scale init; 'arch' takes the
            arch's value (1e-5 for B/L/L2, None for T/T2/S). It decides whether
            ``gamma_1``/``gamma_2`` exist, so it must match the checkpoint. Defaults to 'arch'.
        layer_scale_conv (float, optional): ConvBlock layer scale (``gamma``); None in every
            NVlabs variant. Defaults to None.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
        qkv_bias (bool): bias in qkv. Defaults to True (NVlabs).
        drop_rate (float): dropout after projections. Defaults to 0.
        attn_drop_rate (float): attention dropout. Defaults to 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
            Defaults to 0. (NVlabs: 0.2-0.3 on ImageNet, 0.4 for B on ADE20K).
        out_indices (Sequence[int]): levels whose features are returned. Defaults to
            (0, 1, 2, 3).
        norm_cfg (dict): norm of the convolutional parts (stem, ConvBlocks); the token blocks
            always use LayerNorm as in the checkpoints. The stem defaults to eps=1e-4 (NVlabs).
            Defaults to ``dict(type='BN', requires_grad=True)``.
        out_norm (dict, optional): norm applied to each returned feature, as ``outnorm{i}``
            (not in ImageNet checkpoints, so trained from scratch): ``dict(type='LN2d')``
            (NVlabs' mmseg default), ``dict(type='BN')``, ... None: return raw features.
            Defaults to None.
        frozen_stages (int): -1: train everything; 0: freeze the stem; k >= 1: also freeze
            levels 0..k-1 (and their ``outnorm``). Defaults to -1.
        norm_eval (bool): keep BatchNorm layers in eval mode during training. Defaults to False.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads an NVlabs
            ``.pth.tar`` (weights under ``state_dict``), a converted ``.pth``, or a segmentor
            checkpoint (``backbone.`` prefix stripped; or give ``prefix='backbone.'``).
            Missing or unexpected encoder weights raise, listing the keys. Defaults to None.

    Example:
        >>> model = MambaVision(arch='test')
        >>> [f.shape[-2:] for f in model(torch.rand(1, 3, 95, 27))]
        [torch.Size([24, 7]), torch.Size([12, 4]), torch.Size([6, 2]), torch.Size([3, 1])]
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 in_channels: int = 3,
                 window_size: Optional[Union[int, Sequence[int]]] = None,
                 window_padding: str = 'mask',
                 layer_scale: Union[float, None, str] = 'arch',
                 layer_scale_conv: Optional[float] = None,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 out_norm: Optional[dict] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_name = arch if isinstance(arch, str) else None
        settings = self._resolve_arch(arch)
        self.dim = settings['dim']
        self.in_dim = settings['in_dim']
        self.depths = tuple(settings['depths'])
        self.num_heads = tuple(settings['num_heads'])
        num_levels = len(self.depths)
        if num_levels != 4 or len(self.num_heads) != 4:
            raise ValueError(f'MambaVision: depths and num_heads need 4 levels, got '
                             f'{self.depths} and {self.num_heads}')
        if window_size is None:
            window_size = settings.get('window_size', (8, 8, 14, 7))
        if isinstance(window_size, int):
            window_size = (window_size, ) * num_levels
        self.window_size = tuple(int(w) for w in window_size)
        if len(self.window_size) != num_levels or min(self.window_size) < 1:
            raise ValueError(f'MambaVision: window_size needs 4 positive ints, got {window_size}')
        if window_padding not in ('mask', 'zeros'):
            raise ValueError(f"MambaVision: window_padding must be 'mask' or 'zeros', "
                             f'got {window_padding!r}')
        self.window_padding = window_padding
        if layer_scale == 'arch':
            layer_scale = settings.get('layer_scale')
        elif isinstance(layer_scale, str):
            raise ValueError(f"MambaVision: layer_scale must be 'arch', None or a float, "
                             f'got {layer_scale!r}')
        self.layer_scale = layer_scale
        self.out_indices = tuple(out_indices)
        if not self.out_indices or any(i not in range(num_levels) for i in self.out_indices):
            raise ValueError(f'MambaVision: out_indices must be a non-empty subset of '
                             f'0..{num_levels - 1}, got {out_indices}')
        if frozen_stages > num_levels:
            raise ValueError(f'MambaVision: frozen_stages must be <= {num_levels}, '
                             f'got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.channels = tuple(self.dim * 2**i for i in range(num_levels))

        self.patch_embed = PatchEmbed(in_channels, self.in_dim, self.dim, norm_cfg)
        num_blocks = sum(self.depths)  # linearly increasing rates (linspace, meta-safe)
        dpr = [drop_path_rate * j / max(num_blocks - 1, 1) for j in range(num_blocks)]
        self.levels = nn.ModuleList()
        for i in range(num_levels):
            self.levels.append(
                MambaVisionLayer(
                    dim=self.channels[i],
                    depth=self.depths[i],
                    num_heads=self.num_heads[i],
                    window_size=self.window_size[i],
                    window_padding=window_padding,
                    conv=i < 2,
                    downsample=i < num_levels - 1,
                    norm_cfg=norm_cfg,
                    drop_path=dpr[sum(self.depths[:i]):sum(self.depths[:i + 1])],
                    layer_scale=layer_scale,
                    layer_scale_conv=layer_scale_conv,
                    with_cp=with_cp,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate))
        self.out_norm = out_norm
        if out_norm is not None:
            for i in self.out_indices:
                self.add_module(f'outnorm{i}', _build_norm(out_norm, self.channels[i]))
        self._freeze_stages()

    @staticmethod
    def _resolve_arch(arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise ValueError(f'MambaVision: unknown arch {arch!r}; expected one of '
                                 f'{sorted(ARCH_SETTINGS)} or a dict')
            return dict(ARCH_SETTINGS[arch])
        if isinstance(arch, dict):
            missing = {'dim', 'in_dim', 'depths', 'num_heads'} - set(arch)
            if missing:
                raise ValueError(f'MambaVision: arch dict lacks {sorted(missing)}, got {arch}')
            return dict(arch)
        raise TypeError(f'MambaVision: arch must be a str or dict, got {type(arch)}')

    # ---------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Extract the feature pyramid.

        Args:
            x (Tensor): (B, in_channels, H, W), any H, W >= 1.

        Returns:
            tuple[Tensor]: for each ``i`` in ``out_indices`` a (B, dim * 2**i,
            ceil(H / 2**(i+2)), ceil(W / 2**(i+2))) map, taken before the level's downsample.
        """
        x = self.patch_embed(x)
        outs = []
        last = max(self.out_indices)
        for i, level in enumerate(self.levels):
            feat = level.forward_blocks(x)
            if i in self.out_indices:
                if self.out_norm is not None:
                    feat = getattr(self, f'outnorm{i}')(feat)
                outs.append(feat.contiguous())
            if i == last:
                break
            x = level.downsample(feat)
        return tuple(outs)

    # ------------------------------------------------------------------- train / freezing
    def _freeze_stages(self) -> None:
        frozen: List[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen.append(self.patch_embed)
        for i in range(self.frozen_stages):
            frozen.append(self.levels[i])
            if hasattr(self, f'outnorm{i}'):
                frozen.append(getattr(self, f'outnorm{i}'))
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'MambaVision':
        """Set train mode, keeping frozen stages (and BN layers if ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------------------ init
    @staticmethod
    def _default_init(m: nn.Module) -> None:
        """NVlabs init: trunc-normal(0.02) Linear weights, zero biases, unit norms."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if m.bias is not None and not getattr(m.bias, '_no_reinit', False):
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, _BatchNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Default init, or load ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

        ``checkpoint`` is a local file or a URL; the release URLs (:data:`.pretrained.NVLABS_CHECKPOINTS`) are read from
        ``$SAR_OILSPILL_WEIGHTS_DIR`` when it is set, else from torch's hub cache, downloaded once (see
        :mod:`.pretrained`).

        Raises:
            FileNotFoundError: the local checkpoint file does not exist;
                :class:`~.pretrained.PretrainedWeightsUnavailable` (a FileNotFoundError): a URL's file is
                neither in the offline folder / cache nor downloadable (the message says how to get it).
            KeyError: the checkpoint's encoder keys or shapes do not match this architecture
                (missing and unexpected keys listed).
            CheckpointError (a ValueError): the file is empty, unreadable, holds objects that are
                not plain weights, or tensors with NaN/Inf (nothing is loaded).
        """
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            self.apply(self._default_init)
            if self.init_cfg is not None:
                super().init_weights()
            return
        path = self.init_cfg.get('checkpoint')
        if path is None:
            raise ValueError(f'MambaVision: init_cfg {self.init_cfg} has no `checkpoint`')
        state_dict = load_pretrained(path, self.arch_name, prefix=self.init_cfg.get('prefix'))
        self.load_encoder_state_dict(state_dict, source=str(path))
        self._is_init = True

    def load_encoder_state_dict(self, state_dict: Dict[str, Tensor], source: str = '') -> None:
        """Load encoder weights strictly; only the classifier and ``outnorm`` may differ.

        Before anything is copied, the checkpoint's encoder entries (``patch_embed.*``,
        ``levels.*``) are compared with this model's: any missing entry, unexpected entry (e.g.
        the extra blocks of a deeper variant, or ``gamma_*`` when ``layer_scale`` does not
        match) or shape mismatch raises, listing the keys, so a wrong variant never loads
        partially. The classifier (``norm.*``/``head.*``) is dropped; ``outnorm*`` layers that
        the checkpoint lacks stay newly initialised, extra ``outnorm*`` entries are ignored.

        Args:
            state_dict (dict[str, Tensor]): NVlabs-named weights (``norm.``/``head.`` allowed).
            source (str): file name for messages.

        Raises:
            KeyError: encoder keys missing from or unexpected in ``state_dict``, or encoder
                weights of the wrong shape; the message lists them.
        """
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(CLASSIFIER_PREFIXES)}
        own = self.state_dict()
        check_encoder_weights(state_dict, own, self.arch_name, source)
        loadable = {k: v for k, v in state_dict.items() if k in own}
        ignored = sorted(k for k in state_dict if k not in own)
        new_layers = sorted(k for k in own if k not in state_dict)
        self.load_state_dict(loadable, strict=False)
        print_log(
            f'MambaVision: loaded {len(loadable)} tensors from {source!r}; '
            f'new (not in checkpoint): {new_layers}; ignored: {ignored[:10]}',
            logger='current')
