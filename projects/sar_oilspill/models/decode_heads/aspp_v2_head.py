"""DeepLab v2 ASPP (Chen et al., "DeepLab: Semantic Image Segmentation with
Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI
2017), a baseline of the paper's Table 6."""
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import build_conv_layer
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS


@MODELS.register_module()
class ASPPV2Head(BaseDecodeHead):
    """DeepLab v2 atrous spatial pyramid pooling (ASPP-L, the ResNet-101 model).

    One input level ``x`` (the dilated ResNet's last stage, stride 8). Each
    branch is a single 3x3 convolution with dilation ``r`` straight to the
    class logits (with bias), and the branches are SUMMED (Sec. 3.3 / Fig. 7
    of the DeepLab paper; the released ResNet-101 prototxt, ``fc1_c0..c3``)::

        logits = sum_r Conv3x3_{dilation r}(dropout(x)),  r in (6, 12, 18, 24)

    Unlike DeepLab v3's ASPP (mmseg's ``ASPPHead``): no 1x1 branch, no image
    pooling, no concatenation, no normalisation and no activation in the head.
    It therefore has no ``channels`` argument and no ``conv_seg``; the weights
    start from N(0, 0.01) and the biases from 0, as in DeepLab's prototxt.

    Simplified: the multi-scale input fusion ("msc", max over 3 scales during
    training) and the fully connected CRF post-processing are left out; the
    logits (stride 8) are upsampled bilinearly to the label size for the loss,
    as in every mmseg head (DeepLab v2 subsampled the labels instead).

    Args:
        in_channels (int): Channels of the input level (2048 for ResNet-101).
        dilations (Sequence[int]): Dilation of each branch. Defaults to
            ``(6, 12, 18, 24)`` (ASPP-L).
        dropout_ratio (float): Dropout on the input features. Defaults to 0
            (the ResNet-101 DeepLab v2 has none).
        init_cfg (dict): Defaults to N(0, 0.01) weights, 0 biases.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``num_classes``,
            ``in_index``, ``loss_decode``, ``align_corners``, ...).
            ``channels`` and ``norm_cfg`` are refused (see above).
    """

    def __init__(self,
                 in_channels: int,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 dropout_ratio: float = 0.0,
                 init_cfg: Optional[Dict] = dict(type='Normal', std=0.01, bias=0, layer='Conv2d'),
                 **kwargs) -> None:
        for key in ('channels', 'norm_cfg'):
            if kwargs.get(key) is not None:
                raise ValueError(f'ASPPV2Head: {key}={kwargs[key]!r}; the DeepLab v2 ASPP has no hidden width '
                                 'and no normalisation (each branch is one conv to the logits)')
            kwargs.pop(key, None)
        if not isinstance(in_channels, int):
            raise ValueError(f'ASPPV2Head: in_channels={in_channels!r}; expected one level (an int)')
        dilations = tuple(int(d) for d in dilations)
        if not dilations or min(dilations) < 1:
            raise ValueError(f'ASPPV2Head: dilations={dilations} must be a non-empty list of integers >= 1')
        # channels=1 only to satisfy BaseDecodeHead; its conv_seg is removed below
        super().__init__(in_channels, 1, dropout_ratio=dropout_ratio, init_cfg=init_cfg, **kwargs)
        del self.conv_seg
        self.channels = self.out_channels
        self.dilations = dilations
        self.aspp = nn.ModuleList(
            build_conv_layer(self.conv_cfg, in_channels, self.out_channels, 3, padding=d, dilation=d, bias=True)
            for d in dilations)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Sum of the dilated branches.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs; the selected level is
                (B, in_channels, H, W).

        Returns:
            Tensor: Logits (B, out_channels, H, W).
        """
        x = self._transform_inputs(inputs)
        if self.dropout is not None:
            x = self.dropout(x)
        out = self.aspp[0](x)
        for branch in self.aspp[1:]:
            out = out + branch(x)
        return out
