"""SAROSS-Net decoder: UNet++ CAFT skip grid + conv decoder (Sec. 3.3).

Its training loss (Eq. 10) on batches that mix hard-labelled samples
(``gt_sem_seg``) and soft-labelled samples (``gt_soft_logits``, the teacher's
per-pixel logits) is :class:`SoftLabelLossMixin`'s, as for any decode head of
a ``SoftLabelEncoderDecoder``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from ..necks.unetpp_skip import UNetPPSkip
from .soft_label_loss import SoftLabelLossMixin


@MODELS.register_module()
class SAROSSHead(SoftLabelLossMixin, BaseDecodeHead):
    """SAROSS-Net decode head.

    The UNet++ skip grid lives inside the head (``skip_cfg``, by default a
    :class:`UNetPPSkip` with CAFT nodes). The segmentor then needs no neck,
    the backbone's pyramid reaches the head unchanged (auxiliary heads see the
    plain encoder features), and the Table 9 ablation changes one key,
    ``decode_head.skip_cfg.skip_type``.

    Forward, for ``L`` input levels (level 0 = highest resolution, usually
    stride 4)::

        s_0..s_{L-1} = skip(x_0..x_{L-1})           # UNet++ grid
        d = s_{L-1}                                 # bottleneck
        for i = L-2 .. 0:                           # decoder_channels[:L-1]
            d = 2 x ConvBNReLU3x3(cat(Up_to(s_i)(d), s_i))
        for each of decoder_channels[L-1:]:         # no skip, x2 each
            d = 2 x ConvBNReLU3x3(Up_x2(d))
        logits = conv_seg(dropout(d))

    With the default five widths and a stride-4 level 0, the two extra stages
    bring the logits to stride 1: ``4 * ceil(H/4)``, i.e. the input size when
    ``H, W`` are multiples of 4. Otherwise the logits are one to three pixels
    larger, and ``loss_by_feat``/``predict_by_feat`` resize them bilinearly
    to the label/image size, as every mmseg head does.

    Losses (Eq. 10), from ``loss_decode`` (mmseg style, one config per term;
    the weights are the losses' ``loss_weight``)::

        loss_decode=[
            dict(type='CrossEntropyLoss', loss_weight=1.0,
                 avg_non_ignore=True),
            dict(type='KDLoss', temperature=T, loss_weight=lambda_kd),
            dict(type='SoftDiceLoss', loss_weight=lambda_dice)]

    They are computed by :class:`SoftLabelLossMixin` (mmseg's loss loop on
    hard and soft labels, the same for any decode head of a
    ``SoftLabelEncoderDecoder``): CE on the hard labels, KD on the pixels that
    carry teacher logits, Dice on the hard one-hot label where there is one,
    else the teacher's ``softmax`` (T = 1). See ``soft_label_loss.py``.

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels used,
            highest resolution first (e.g. ``[64, 128, 256, 512]`` for
            ResNet-34).
        decoder_channels (Sequence[int]): Widths of the decoder stages: the
            first ``L - 1`` follow the skip levels ``L-2 .. 0``, each further
            one upsamples x2 without a skip. Defaults to
            ``(256, 128, 64, 32, 16)``.
        skip_cfg (dict, optional): Config of the skip module; ``in_channels``
            and ``align_corners`` (and, for ``UNetPPSkip``, the head's
            ``norm_cfg``) are filled in if absent. ``None`` means
            plain skips (same as ``skip_type='none'``). Defaults to
            ``dict(type='UNetPPSkip', skip_type='caft')``.
        channels (int, optional): Input channels of ``conv_seg``; must equal
            ``decoder_channels[-1]`` if given.
        in_index (Sequence[int], optional): Backbone outputs to use.
            Defaults to all, ``range(len(in_channels))``.
        norm_cfg (dict): Norm of the decoder convs. Defaults to BN.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``num_classes``,
            ``loss_decode``, ``dropout_ratio``, ``align_corners``,
            ``ignore_index``, ...).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
                 skip_cfg: Optional[dict] = dict(
                     type='UNetPPSkip', skip_type='caft'),
                 channels: Optional[int] = None,
                 in_index: Optional[Sequence[int]] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 **kwargs) -> None:
        in_channels = list(in_channels)
        decoder_channels = list(decoder_channels)
        num_levels = len(in_channels)
        if num_levels < 2:
            raise ValueError(f'SAROSSHead: in_channels={in_channels} needs at '
                             'least 2 levels')
        if len(decoder_channels) < num_levels - 1:
            raise ValueError(
                f'SAROSSHead: decoder_channels={decoder_channels} needs at '
                f'least {num_levels - 1} widths (one per skip level) for '
                f'in_channels={in_channels}')
        if channels is not None and channels != decoder_channels[-1]:
            raise ValueError(f'SAROSSHead: channels={channels} must equal '
                             f'decoder_channels[-1]={decoder_channels[-1]}')
        if in_index is None:
            in_index = list(range(num_levels))
        if kwargs.pop('input_transform', 'multiple_select') != \
                'multiple_select':
            raise ValueError('SAROSSHead: input_transform must be '
                             "'multiple_select' (it needs the whole pyramid)")
        super().__init__(
            in_channels,
            decoder_channels[-1],
            in_index=list(in_index),
            input_transform='multiple_select',
            norm_cfg=norm_cfg,
            **kwargs)
        if self.out_channels != self.num_classes:
            raise ValueError(
                'SAROSSHead: out_channels must equal num_classes (softmax '
                'logits, needed by the soft-label losses); got out_channels='
                f'{self.out_channels}, num_classes={self.num_classes}')
        self.decoder_channels = decoder_channels

        if skip_cfg is None:
            skip_cfg = dict(type='UNetPPSkip', skip_type='none')
        skip_cfg = dict(skip_cfg)
        skip_cfg.setdefault('in_channels', in_channels)
        skip_cfg.setdefault('align_corners', self.align_corners)
        if skip_cfg.get('type') in ('UNetPPSkip', UNetPPSkip):
            skip_cfg.setdefault('norm_cfg', self.norm_cfg)  # conv3x3 nodes
        self.skip = MODELS.build(skip_cfg)

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                ConvModule(cin, cout, 3, padding=1, conv_cfg=self.conv_cfg,
                           norm_cfg=self.norm_cfg, act_cfg=self.act_cfg),
                ConvModule(cout, cout, 3, padding=1, conv_cfg=self.conv_cfg,
                           norm_cfg=self.norm_cfg, act_cfg=self.act_cfg))

        self.skip_stages = nn.ModuleList()
        prev = in_channels[-1]
        for k in range(num_levels - 1):
            skip_ch = in_channels[num_levels - 2 - k]
            self.skip_stages.append(block(prev + skip_ch, decoder_channels[k]))
            prev = decoder_channels[k]
        self.up_stages = nn.ModuleList()
        for width in decoder_channels[num_levels - 1:]:
            self.up_stages.append(block(prev, width))
            prev = width

    def _resize(self, x: Tensor, size: Tuple[int, int]) -> Tensor:
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Decode the backbone pyramid.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs; the selected levels
                are (B, in_channels[i], H_i, W_i).

        Returns:
            Tensor: Logits (B, out_channels, H_0 * 2^m, W_0 * 2^m), with
            ``m`` the number of stages after level 0.
        """
        feats = self._transform_inputs(inputs)
        skips = self.skip(feats)
        num_levels = len(skips)
        x = skips[-1]
        for k, stage in enumerate(self.skip_stages):
            skip = skips[num_levels - 2 - k]
            x = stage(torch.cat([self._resize(x, skip.shape[-2:]), skip], 1))
        for stage in self.up_stages:
            x = stage(self._resize(x, (x.shape[-2] * 2, x.shape[-1] * 2)))
        return self.cls_seg(x)
