"""MambaVision's building blocks (NVlabs ``mambavision/models/mamba_vision.py``, mambavision 1.2.0) in native
PyTorch: window partitioning with masked edge windows, the stem, downsampler, conv blocks, the Mamba mixer, windowed
self-attention, MLP, the token block and a level of blocks. Parameter names and shapes are NVlabs'; the backbone that
assembles them, its variants and its weights are in :mod:`.mambavision`.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor

from ..utils.layer_norm import LayerNorm2d  # NVlabs' ``ln2d`` output norm
from .selective_scan import selective_scan_fn


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
        window_padding (str): 'mask' or 'zeros' (see :mod:`.mambavision`'s docstring).
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
