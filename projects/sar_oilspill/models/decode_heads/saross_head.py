"""SAROSS-Net decoder: UNet++ CAFT skip grid + conv decoder (Sec. 3.3).

The head also computes the training loss of Eq. 10 on batches that mix
hard-labelled samples (``gt_sem_seg``) and soft-labelled samples
(``gt_soft_logits``, the teacher's per-pixel logits).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from ..losses.kd_loss import KDLoss
from ..losses.soft_dice_loss import SoftDiceLoss
from ..necks.unetpp_skip import UNetPPSkip


@MODELS.register_module()
class SAROSSHead(BaseDecodeHead):
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

    How each term picks its target:

    * :class:`KDLoss`: only samples that carry ``gt_soft_logits`` (K, h, w),
      on the pixels those logits cover. The preprocessor pads ``gt_sem_seg``
      at the bottom/right but not the soft logits, so they are padded here
      and the padding is masked out. A batch without soft samples gives
      ``0 * logits.sum()``: exactly 0, key always present, graph intact.
    * :class:`SoftDiceLoss`: per pixel, the one-hot hard label where
      ``gt_sem_seg != ignore_index``, otherwise, on soft samples, the
      teacher's probabilities ``softmax(gt_soft_logits)`` at temperature 1
      (the teacher's own estimate, not the KD-softened one), otherwise the
      pixel is masked.
    * any other loss (e.g. mmseg's ``CrossEntropyLoss``): the mmseg call on
      the hard labels, ignoring ``ignore_index``. Soft-only samples carry an
      all-255 ``gt_sem_seg`` and add nothing. Use ``avg_non_ignore=True`` so
      that CE averages over labelled pixels only.

    ``acc_seg`` is measured against the same per-pixel target as Dice, with
    the teacher's argmax standing in for the soft probabilities.

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

    supports_soft_labels = True

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

    def _soft_targets(
            self, batch_data_samples: SampleList,
            size: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """Collect the teacher logits of the samples that carry them.

        Args:
            batch_data_samples (list[SegDataSample]): The batch.
            size (tuple[int, int]): Padded label size (H, W).

        Returns:
            tuple[Tensor, Tensor, Tensor]: sample indices (S,) long, teacher
            logits (S, K, H, W) padded with 0, and valid mask (S, H, W) bool
            (False on the padding). ``S`` may be 0.
        """
        idx, logits, masks = [], [], []
        h_pad, w_pad = size
        for n, sample in enumerate(batch_data_samples):
            if 'gt_soft_logits' not in sample:
                continue
            t = sample.gt_soft_logits.data
            where = sample.metainfo.get('img_path', f'batch sample {n}')
            if t.dim() != 3 or not t.is_floating_point() or \
                    t.shape[0] != self.out_channels:
                raise ValueError(
                    f'SAROSSHead: gt_soft_logits of {where} must be a float '
                    f'tensor ({self.out_channels}, H, W) (num_classes '
                    f'logits), got dtype {t.dtype}, shape {tuple(t.shape)}')
            h, w = t.shape[-2:]
            if h > h_pad or w > w_pad:
                raise ValueError(
                    f'SAROSSHead: gt_soft_logits of {where} is {h}x{w}, '
                    f'larger than the batch label size {h_pad}x{w_pad}')
            logits.append(F.pad(t.float(), (0, w_pad - w, 0, h_pad - h)))
            mask = t.new_zeros((h_pad, w_pad), dtype=torch.bool)
            mask[:h, :w] = True
            masks.append(mask)
            idx.append(n)
        if not idx:
            return None, None, None
        device = logits[0].device
        return (torch.tensor(idx, dtype=torch.long, device=device),
                torch.stack(logits), torch.stack(masks))

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """Eq. 10: CE on hard labels + KD on soft labels + soft Dice.

        Args:
            seg_logits (Tensor): Head output, (N, K, h, w).
            batch_data_samples (list[SegDataSample]): Each has ``gt_sem_seg``
                (1, H, W) (255 = ignore) and optionally ``gt_soft_logits``
                (K, H', W') with ``H' <= H``, ``W' <= W``.

        Returns:
            dict[str, Tensor]: One entry per ``loss_name`` (always present)
            and ``acc_seg``.
        """
        for n, sample in enumerate(batch_data_samples):
            if 'gt_sem_seg' not in sample:
                raise ValueError(
                    f'SAROSSHead: batch sample {n} has no gt_sem_seg; use '
                    'SoftLabelEncoderDecoder, which adds an all-ignore map '
                    'to soft-only samples')
        seg_label = self._stack_batch_gt(batch_data_samples)  # (N, 1, H, W)
        seg_logits = self._resize(seg_logits, seg_label.shape[2:])
        seg_weight = None
        if self.sampler is not None:
            seg_weight = self.sampler.sample(seg_logits, seg_label)
        seg_label = seg_label.squeeze(1)
        num_classes = self.num_classes

        soft_idx, teacher, soft_mask = self._soft_targets(
            batch_data_samples, seg_label.shape[-2:])

        # Per-pixel target shared by Dice and acc_seg: hard label, else the
        # teacher (soft samples), else nothing.
        hard_valid = seg_label != self.ignore_index
        labels = torch.where(hard_valid, seg_label,
                             torch.zeros_like(seg_label))
        if bool((labels < 0).any()) or bool((labels >= num_classes).any()):
            raise ValueError(
                f'SAROSSHead: gt_sem_seg values must be in [0, {num_classes})'
                f' or {self.ignore_index}; got [{int(labels.min())}, '
                f'{int(labels.max())}]')
        valid = hard_valid.clone()
        acc_target = seg_label.clone()
        target_probs = None

        def dice_target() -> Tensor:
            probs = F.one_hot(labels.long(), num_classes).permute(
                0, 3, 1, 2).float() * hard_valid.unsqueeze(1)
            if soft_idx is not None:
                use = soft_mask & ~hard_valid[soft_idx]
                teacher_probs = F.softmax(teacher, dim=1)  # T = 1
                probs[soft_idx] = torch.where(
                    use.unsqueeze(1), teacher_probs, probs[soft_idx])
            return probs

        if soft_idx is not None:
            use = soft_mask & ~hard_valid[soft_idx]
            acc_target[soft_idx] = torch.where(
                use, teacher.argmax(dim=1), acc_target[soft_idx])
            valid[soft_idx] = valid[soft_idx] | soft_mask
        acc_target = torch.where(
            valid, acc_target, torch.full_like(acc_target,
                                               self.ignore_index))

        losses_decode = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        loss = dict()
        for loss_fn in losses_decode:
            if isinstance(loss_fn, KDLoss):
                if soft_idx is None:
                    value = seg_logits.sum() * 0.  # exact 0, graph kept
                else:
                    value = loss_fn(
                        seg_logits[soft_idx], teacher, valid_mask=soft_mask)
            elif isinstance(loss_fn, SoftDiceLoss):
                if target_probs is None:
                    target_probs = dice_target()
                value = loss_fn(seg_logits, target_probs, valid_mask=valid)
            else:
                value = loss_fn(
                    seg_logits,
                    seg_label,
                    weight=seg_weight,
                    ignore_index=self.ignore_index)
            name = loss_fn.loss_name
            loss[name] = loss[name] + value if name in loss else value

        loss['acc_seg'] = accuracy(
            seg_logits, acc_target, ignore_index=self.ignore_index)
        return loss
