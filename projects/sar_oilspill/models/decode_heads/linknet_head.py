"""LinkNet decoder (Chaurasia & Culurciello, "LinkNet: Exploiting Encoder
Representations for Efficient Semantic Segmentation", VCIP 2017), a baseline
of the paper's Table 6."""
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS


def deconv_x2(in_channels: int, out_channels: int, kernel_size: int,
              norm_cfg: Optional[Dict], act_cfg: Optional[Dict]) -> nn.Sequential:
    """Transposed conv that doubles the size exactly (``2 H x 2 W``) + norm + act.

    Padding ``(k - 1) // 2`` and output padding ``k % 2`` give ``2 n`` for any
    kernel size ``k >= 2`` (LinkNet's 3x3 "full-conv", D-LinkNet's 4x4).
    """
    if kernel_size < 2:
        raise ValueError(f'deconv_x2: kernel_size={kernel_size} must be >= 2')
    layers = [nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2,
                                 padding=(kernel_size - 1) // 2,
                                 output_padding=kernel_size % 2, bias=norm_cfg is None)]
    if norm_cfg is not None:
        layers.append(build_norm_layer(norm_cfg, out_channels)[1])
    if act_cfg is not None:
        layers.append(build_activation_layer(act_cfg))
    return nn.Sequential(*layers)


class LinkNetDecoderBlock(nn.Sequential):
    """LinkNet decoder block (Fig. 3 of the LinkNet paper), ``m -> n``, x2 size.

    ``conv1x1 (m -> m/4)``, ``full-conv3x3 stride 2 (m/4 -> m/4)``,
    ``conv1x1 (m/4 -> n)``, each followed by norm + ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = dict(type='BN'),
                 act_cfg: Optional[Dict] = dict(type='ReLU')) -> None:
        mid = in_channels // 4
        if mid < 1:
            raise ValueError(f'LinkNetDecoderBlock: in_channels={in_channels} must be >= 4')
        super().__init__(
            ConvModule(in_channels, mid, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg),
            deconv_x2(mid, mid, 3, norm_cfg, act_cfg),
            ConvModule(mid, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg))


@MODELS.register_module()
class LinkNetHead(BaseDecodeHead):
    """LinkNet decoder over the four stages of a ResNet encoder.

    Follows Chaurasia & Culurciello (2017): decoder block ``i`` (see
    :class:`LinkNetDecoderBlock`) maps the deeper features ``C_i -> C_{i-1}``
    at twice the size, and its output is ADDED to encoder stage ``i - 1``
    (the "link"); the first block keeps its width and has no skip. For a
    ResNet with levels at strides 4, 8, 16, 32 (``e_0 .. e_3``)::

        d_3 = e_3                                       # (C_3, H/32)
        d_i = Block(C_{i+1} -> C_i)(d_{i+1}) + e_i      # i = 2, 1, 0
        d   = Block(C_0 -> C_0)(d_0)                    # (C_0, H/2)
        d   = Act(Norm(FullConv k x k, stride 2 (C_0 -> channels)))(d)  # H
        d   = ConvBNReLU3x3(channels -> channels)(d)
        logits = conv_seg(dropout(d))                   # (num_classes, H)

    Simplified / adapted:

    * The paper's encoder blocks all halve the size (stride 64 at the bottom)
      and its last layer is a 2x2 full-conv, x2, to the classes. A ResNet's
      first stage keeps the size (stride 32 at the bottom), so, as in the
      ResNet-18 LinkNets of D-LinkNet and segmentation_models, the logits are
      already at the input size after the 3x3 full-conv, and the last layer
      is mmseg's 1x1 ``conv_seg``.
    * When an input side is not a multiple of 32, an upsampled map can be one
      pixel larger than the skip it is added to; it is cropped to the skip.
      The logits are then up to 3 pixels larger than the input, and
      ``loss_by_feat`` / ``predict_by_feat`` resize them (as every mmseg head).

    Args:
        in_channels (Sequence[int]): Channels of the encoder levels, highest
            resolution first, e.g. ``[64, 128, 256, 512]`` (ResNet-18/34).
        channels (int): Width of the final full-conv and 3x3 conv (input of
            ``conv_seg``). LinkNet uses 32.
        in_index (Sequence[int], optional): Backbone outputs to use; defaults
            to ``range(len(in_channels))``.
        final_kernel (int): Kernel of the final full-conv. Defaults to 3
            (LinkNet); CBD-Net / D-LinkNet use 4.
        final_norm (bool): Normalise the two final convs (LinkNet: BN after
            every conv). D-LinkNet / CBD-Net use bias + ReLU only (False).
        **kwargs: Other :class:`BaseDecodeHead` arguments (``num_classes``,
            ``norm_cfg``, ``dropout_ratio``, ``loss_decode``, ...).
            ``input_transform`` can only be ``'multiple_select'``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 32,
                 in_index: Optional[Sequence[int]] = None,
                 final_kernel: int = 3,
                 final_norm: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError(f'{name}: in_channels={in_channels} needs at least 2 levels')
        if kwargs.pop('input_transform', 'multiple_select') != 'multiple_select':
            raise ValueError(f"{name}: input_transform must be 'multiple_select' (it needs the pyramid)")
        super().__init__(
            in_channels,
            channels,
            in_index=list(range(len(in_channels)) if in_index is None else in_index),
            input_transform='multiple_select',
            **kwargs)
        cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        levels = len(in_channels)
        # decoders[k] takes level levels-1-k to level levels-2-k; the last one keeps C_0 (no skip)
        widths = in_channels[::-1] + [in_channels[0]]
        self.decoders = nn.ModuleList(
            LinkNetDecoderBlock(widths[k], widths[k + 1], **cfg) for k in range(levels))
        final_norm_cfg = self.norm_cfg if final_norm else None
        self.final_up = deconv_x2(in_channels[0], channels, final_kernel, final_norm_cfg, self.act_cfg)
        self.final_conv = ConvModule(channels, channels, 3, padding=1, conv_cfg=self.conv_cfg,
                                     norm_cfg=final_norm_cfg, act_cfg=self.act_cfg)

    def center(self, x: Tensor) -> Tensor:
        """Transform of the deepest level before decoding (identity in LinkNet)."""
        return x

    def decode(self, feats: Sequence[Tensor]) -> Tensor:
        """Decoder blocks with additive skips, then the final full-conv and conv.

        Args:
            feats (Sequence[Tensor]): Levels ``(B, C_i, H_i, W_i)``, highest
                resolution first.

        Returns:
            Tensor: (B, channels, 2 H_0', 2 W_0') features before ``conv_seg``,
            with ``H_0'`` the (possibly cropped) size of decoder level 0 x 2.
        """
        x = self.center(feats[-1])
        for k, decoder in enumerate(self.decoders):
            x = decoder(x)
            if k < len(feats) - 1:
                skip = feats[-2 - k]
                h, w = skip.shape[-2:]
                x = x[..., :h, :w] + skip  # x2 of ceil(n/2) is n or n+1
        return self.final_conv(self.final_up(x))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Decode the backbone pyramid.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs.

        Returns:
            Tensor: Logits (B, out_channels, ~H, ~W) at the input resolution
            (exactly ``H, W`` for sides that are multiples of 32).
        """
        return self.cls_seg(self.decode(self._transform_inputs(inputs)))
