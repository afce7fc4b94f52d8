"""UNet++ nested skip grid with CAFT-block nodes (paper Sec. 3.3, Fig. 3).

Notation of UNet++ (Zhou et al. 2018): ``x_{i,0}`` is the encoder feature at
level ``i`` (level 0 = highest resolution, ``L`` levels), and for ``j >= 1``
the node ``x_{i,j}`` (defined for ``i + j <= L - 1``) combines the same-level
nodes ``x_{i,0} .. x_{i,j-1}`` (dense skips) with the upsampled node one level
deeper, ``x_{i+1,j-1}``. For ``L = 4``::

    x00 ── x01 ── x02 ── x03 ─►  skip 0  (decoder level 0)
      ╲   ╱   ╲   ╱   ╲   ╱
       x10 ── x11 ── x12 ───►  skip 1
         ╲   ╱   ╲   ╱
          x20 ── x21 ───────►  skip 2
            ╲   ╱
             x30 ──────────►  bottleneck (passed through)

Each node passes its HR output on to the next node of its row; the last node of
row ``i`` (``x_{i,L-1-i}``) is the skip feature given to the convolutional
decoder block of level ``i`` (the paper: "each CAFT block transfers HR
features to the next CAFT block or the convolutional decoder block").
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from .caft import CAFTBlock

SKIP_TYPES = ('caft', 'conv3x3', 'none')


@MODELS.register_module()
class UNetPPSkip(BaseModule):
    """UNet++ nested skip grid; the node type is set by ``skip_type``.

    Input and output are both an ``L``-level pyramid with the same channels and
    sizes, so the module works as the head's skip module (what ``SAROSSHead``
    does) or as an mmseg ``neck``. Output ``i < L-1`` is the last node of row
    ``i``, ``x_{i,L-1-i}``; output ``L-1`` is the encoder bottleneck
    ``x_{L-1,0}`` unchanged.

    What the node ``x_{i,j}`` (``j >= 1``) computes for each ``skip_type``
    (``C = C_i`` channels at level ``i``, ``Up`` = bilinear resize to the size
    of ``x_{i,0}``):

    * ``'caft'`` (SAROSS-Net): ``hr = x_{i,0}`` if ``j == 1``, otherwise
      ``hr = Conv1x1_{jC->C}(cat(x_{i,0}, .., x_{i,j-1}))`` (the dense UNet++
      skips fused linearly). Then ``x_{i,j} = CAFTBlock(hr, lr=x_{i+1,j-1})``:
      Query from the LR node, Key/Value from ``hr``, residual on ``hr``.
    * ``'conv3x3'`` (Table 9, "3x3 Conv": a convolution block in place of
      each CAFT block): ``hr`` as for ``'caft'`` (same 1x1 fusions), then
      ``x_{i,j} = hr + H(Up(x_{i+1,j-1}))``, where ``H`` is ``num_convs``
      ConvModules (3x3 conv, norm, act); the first maps ``C_{i+1} -> C``, the
      others ``C -> C``. The block has the CAFT block's inputs, output and
      residual, so the two variants differ only in the block. With one conv
      per node (default) the grid adds 8.17 M parameters at MambaVision-B's
      widths (paper: +6.95 M, widths not given); the standard UNet++ node
      (two 3x3 convs on the concatenation of the row and ``Up``) added
      16.96 M.
    * ``'none'`` (Table 9, "No module"): no nodes and no parameters; the
      encoder features are passed directly (output == input), i.e. a plain
      U-Net skip.

    All three variants use the same grid and the same outputs, so the
    decoder's parameters are identical and only the skip module changes.

    Args:
        in_channels (Sequence[int]): Channels of the ``L >= 2`` input levels,
            highest resolution first.
        skip_type (str): ``'caft'``, ``'conv3x3'`` or ``'none'``.
            Defaults to ``'caft'``.
        num_heads (int | Sequence[int]): CAFT heads, one int for all levels
            or one per level (at least ``L - 1`` values). Each must divide
            that level's channels. Defaults to ``(1, 2, 4, 8)``.
        ffn_expansion_factor (float): GDFN ratio inside each CAFT block;
            0 disables the FFN. Defaults to 0.
        attn_reduction (int): CAFT nodes at level ``i`` attend in
            ``C_i / attn_reduction`` channels (``CAFTBlock.attn_channels``);
            must divide every ``C_i`` it applies to. Defaults to 1 (MDTA's
            full width). At MambaVision-B's widths the grid adds 2.47 M
            parameters with 1 and 0.78 M with 4 (the paper reports
            +0.89 M without giving the widths; see the README).
        num_convs (int): 3x3 conv-norm-act layers per ``'conv3x3'`` node.
            Defaults to 1.
        norm_cfg (dict): Norm of the ``'conv3x3'`` nodes. Defaults to BN.
        act_cfg (dict): Activation of the ``'conv3x3'`` nodes. Defaults to
            ReLU.
        align_corners (bool): For the bilinear resizes. Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 skip_type: str = 'caft',
                 num_heads: Union[int, Sequence[int]] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 0.,
                 attn_reduction: int = 1,
                 num_convs: int = 1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU'),
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if skip_type not in SKIP_TYPES:
            raise ValueError(f'UNetPPSkip: skip_type={skip_type!r}; expected '
                             f'one of {SKIP_TYPES}')
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError(f'UNetPPSkip: in_channels={in_channels} needs at '
                             'least 2 levels')
        self.in_channels = in_channels
        self.num_levels = len(in_channels)
        self.skip_type = skip_type
        self.align_corners = align_corners
        num_levels = self.num_levels

        if isinstance(num_heads, int):
            heads = [num_heads] * (num_levels - 1)
        else:
            heads = list(num_heads)
            if len(heads) < num_levels - 1:
                raise ValueError(f'UNetPPSkip: num_heads={num_heads} needs at '
                                 f'least {num_levels - 1} values for '
                                 f'in_channels={in_channels}')
        if attn_reduction < 1:
            raise ValueError(f'UNetPPSkip: attn_reduction={attn_reduction} '
                             'must be >= 1')
        if skip_type == 'conv3x3' and num_convs < 1:
            raise ValueError(f'UNetPPSkip: num_convs={num_convs} must be >= 1')

        self.nodes = nn.ModuleDict()
        self.fusions = nn.ModuleDict()
        if skip_type == 'none':
            return
        for j in range(1, num_levels):
            for i in range(num_levels - j):
                c, c_lr = in_channels[i], in_channels[i + 1]
                name = self._name(i, j)
                if j > 1:  # the dense UNet++ skips, fused linearly
                    self.fusions[name] = nn.Conv2d(j * c, c, 1, bias=False)
                if skip_type == 'caft':
                    ca = c // attn_reduction
                    if ca * attn_reduction != c or ca % heads[i] != 0:
                        raise ValueError(
                            f'UNetPPSkip: in_channels[{i}]={c} / '
                            f'attn_reduction={attn_reduction} must be a '
                            f'whole multiple of num_heads[{i}]={heads[i]}')
                    self.nodes[name] = CAFTBlock(
                        hr_channels=c,
                        lr_channels=c_lr,
                        num_heads=heads[i],
                        ffn_expansion_factor=ffn_expansion_factor,
                        align_corners=align_corners,
                        attn_channels=ca)
                else:  # conv3x3: one conv block in place of the CAFT block
                    layers = [
                        ConvModule(
                            c_lr if k == 0 else c,
                            c,
                            3,
                            padding=1,
                            norm_cfg=norm_cfg,
                            act_cfg=act_cfg) for k in range(num_convs)
                    ]
                    self.nodes[name] = nn.Sequential(*layers)

    @staticmethod
    def _name(i: int, j: int) -> str:
        return f'x{i}_{j}'

    def _node(self, i: int, j: int, row: List[Tensor], lr: Tensor) -> Tensor:
        """Compute ``x_{i,j}`` from ``row = [x_{i,0}..x_{i,j-1}]`` and
        ``lr = x_{i+1,j-1}``."""
        name = self._name(i, j)
        hr = row[0] if j == 1 else self.fusions[name](torch.cat(row, 1))
        if self.skip_type == 'caft':
            return self.nodes[name](hr, lr)
        up = F.interpolate(
            lr,
            size=hr.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners)
        return hr + self.nodes[name](up)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Run the nested skip grid.

        Args:
            inputs (Sequence[Tensor]): ``L`` encoder features; level ``i`` is
                (B, C_i, H_i, W_i), resolution decreasing with ``i`` (any
                sizes, e.g. odd ones).

        Returns:
            tuple[Tensor]: ``L`` tensors with the input shapes: the skip
            features ``x_{i,L-1-i}`` for ``i < L-1`` and ``x_{L-1,0}``.
        """
        if len(inputs) != self.num_levels:
            raise ValueError(f'UNetPPSkip: got {len(inputs)} feature levels, '
                             f'expected {self.num_levels} (in_channels='
                             f'{self.in_channels})')
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(f'UNetPPSkip: level {i} has shape '
                                 f'{tuple(x.shape)}, expected (B, {c}, H, W)')
        if self.skip_type == 'none':
            return tuple(inputs)
        grid: Dict[Tuple[int, int], Tensor] = {
            (i, 0): x
            for i, x in enumerate(inputs)
        }
        num_levels = self.num_levels
        for j in range(1, num_levels):
            for i in range(num_levels - j):
                row = [grid[(i, k)] for k in range(j)]
                grid[(i, j)] = self._node(i, j, row, grid[(i + 1, j - 1)])
        return tuple(grid[(i, num_levels - 1 - i)] for i in range(num_levels))
