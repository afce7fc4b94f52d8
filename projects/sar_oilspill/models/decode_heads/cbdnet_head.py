"""CBD-Net decoder and boundary supervision (Zhu et al., "Oil Spill Contextual
and Boundary-Supervised Detection Network Based on Marine SAR Images", IEEE
TGRS 2022), the SOS dataset authors' network, a baseline of the paper's
Tables 4 and 6.

Sources: the article's abstract (multiscale context, scSE blocks for the
internal consistency of oil regions, "optimized edge supervision") and the
authors' public code, CUG-URS/Marine-Oil-Spill-Detection-Network-CBDNet
(``networks/CBDNet.py``: the network; ``boundary_bce_loss2.py``: the boundary
loss). The article's full text was not available; every detail below is the
released code's, except where marked "project's choice".
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from .linknet_head import LinkNetHead

BOUNDARY_MODES = ('multiply', 'add', None)


def inner_boundary(masks: Tensor, kernel: int = 3, valid: Optional[Tensor] = None) -> Tensor:
    """Inner morphological gradient ``m - erosion(m)`` of (soft) class masks.

    ``erosion(m) = 1 - maxpool_k(1 - m)`` with a ``k x k`` square: a pixel of
    a hard mask is on the boundary when some pixel of its ``k x k``
    neighbourhood is outside the mask. Outside the image, and at pixels where
    ``valid`` is False (e.g. ``ignore_index``, padding), nothing counts as
    "outside the mask", so neither creates a boundary; the result is 0 there.

    Args:
        masks (Tensor): (N, K, H, W) in [0, 1] (one-hot labels or
            probabilities).
        kernel (int): Odd ``k`` (CBD-Net: 3).
        valid (Tensor, optional): (N, H, W) bool.

    Returns:
        Tensor: (N, K, H, W) in [0, 1].
    """
    if kernel < 3 or kernel % 2 == 0:
        raise ValueError(f'inner_boundary: kernel={kernel} must be odd and >= 3')
    outside = 1.0 - masks
    if valid is not None:
        outside = outside * valid.unsqueeze(1).to(masks.dtype)
    boundary = F.max_pool2d(outside, kernel, stride=1, padding=kernel // 2) - outside
    if valid is not None:
        boundary = boundary * valid.unsqueeze(1).to(masks.dtype)
    return boundary


def boundary_f1_loss(probs: Tensor, labels: Tensor, ignore_index: int = 255, kernel: int = 3,
                     tolerance: int = 5, eps: float = 1e-7) -> Tensor:
    """``1 - BF1``, the boundary F1 loss of CBD-Net's code (after Bokhovkin & Burnaev 2019).

    Per sample ``n`` and class ``k``, with ``b = inner_boundary(., kernel)``
    of the prediction (``probs``) and of the one-hot target, and ``ext`` a
    ``tolerance x tolerance`` max-pool of a boundary (a dilated boundary)::

        P = sum(b_pred * ext(b_gt)) / (sum(b_pred) + eps)
        R = sum(ext(b_pred) * b_gt) / (sum(b_gt) + eps)
        loss = mean_{n,k} (1 - 2 P R / (P + R + eps))

    A class with no target boundary in a sample gives ``R = P = 0``: a
    constant 1 with no gradient (as in the released binary loss for tiles
    without oil). Pixels equal to ``ignore_index`` are left out (see
    :func:`inner_boundary`).

    Args:
        probs (Tensor): (N, K, H, W) class probabilities.
        labels (Tensor): (N, H, W) integer labels.
        ignore_index (int): Label value to leave out.
        kernel (int): Boundary width (odd, CBD-Net: 3).
        tolerance (int): Odd size of the matching tolerance window (CBD-Net: 5).
        eps (float): As in the released code.

    Returns:
        Tensor: Scalar in [0, 1].
    """
    if tolerance < 1 or tolerance % 2 == 0:
        raise ValueError(f'boundary_f1_loss: tolerance={tolerance} must be odd and >= 1')
    if probs.dim() != 4 or labels.shape != (probs.shape[0], *probs.shape[2:]):
        raise ValueError(f'boundary_f1_loss: probs {tuple(probs.shape)} must be (N, K, H, W) and labels '
                         f'{tuple(labels.shape)} (N, H, W) of the same N, H, W')
    valid = labels != ignore_index
    target = F.one_hot(torch.where(valid, labels, torch.zeros_like(labels)).long(), probs.shape[1])
    target = target.permute(0, 3, 1, 2).to(probs.dtype)
    pred_b = inner_boundary(probs, kernel, valid)
    gt_b = inner_boundary(target, kernel, valid)
    pred_ext = F.max_pool2d(pred_b, tolerance, stride=1, padding=tolerance // 2)
    gt_ext = F.max_pool2d(gt_b, tolerance, stride=1, padding=tolerance // 2)
    precision = (pred_b * gt_ext).sum((2, 3)) / (pred_b.sum((2, 3)) + eps)
    recall = (pred_ext * gt_b).sum((2, 3)) / (gt_b.sum((2, 3)) + eps)
    bf1 = 2 * precision * recall / (precision + recall + eps)
    return (1 - bf1).mean()


class DilatedCenter(nn.Module):
    """D-LinkNet's / CBD-Net's center block ("Dblock"), multiscale context.

    Cascaded 3x3 convs (with bias, ReLU, no norm) of growing dilation, all
    outputs summed with the input::

        y_1 = ReLU(conv_{d_1}(x)),  y_j = ReLU(conv_{d_j}(y_{j-1}))
        out = x + y_1 + ... + y_J                 # dilations (1, 2, 4, 8)

    Args:
        channels (int): Input = output channels.
        dilations (Sequence[int]): ``d_j``. Defaults to ``(1, 2, 4, 8)``.
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in dilations)
        for conv in self.convs:  # the release zeroes the biases
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out, y = x, x
        for conv in self.convs:
            y = F.relu(conv(y))
            out = out + y
        return out


@MODELS.register_module()
class CBDNetHead(LinkNetHead):
    """CBD-Net decoder: D-LinkNet decoder + boundary-supervised loss.

    Network (with :class:`SCSEResNet` depth 34 as the encoder, ResNet-34 + scSE
    after each stage, i.e. the release's ``CBDNet``)::

        e_0..e_3 = scSE-ResNet-34(image)                      # strides 4..32
        d_3 = DilatedCenter(e_3)                              # multiscale context
        LinkNet decoding of d_3 with additive skips e_2, e_1, e_0  (LinkNetHead)
        FullConv4x4 s2 (64 -> 32) + ReLU, Conv3x3 (32 -> 32) + ReLU, conv_seg

    Losses: mmseg's loop over ``loss_decode`` (the configs: cross-entropy +
    soft Dice, the softmax form of the release's BCE + Dice), then the
    boundary term :func:`boundary_f1_loss` on the softmax probabilities and
    the labels, combined as set by ``boundary_mode``:

    * ``'multiply'`` (default; the release's ``jointloss``):
      ``L = L_BF1 * (L_ce + L_dice)``: every ``loss_*`` term is multiplied by
      ``L_BF1`` (gradients flow through both factors); ``L_BF1`` is logged as
      ``boundary_factor`` (not a loss key, so not summed twice).
    * ``'add'`` (project's choice, an alternative): ``loss_boundary =
      boundary_weight * L_BF1`` is added to the loss dict.
    * ``None``: no boundary term (the release's ``dice_bce_loss``, which its
      README's training command uses).

    Simplified / project's choices: a K-class softmax (CE + Dice over all
    classes, boundary F1 averaged over all classes) where the release has one
    sigmoid channel (binary SOS only), so the same head serves OSD's five
    classes; the boundary ignores ``ignore_index`` pixels (the release has
    none); mmseg's soft Dice with smoothing 1 over all classes where the
    release's Dice is on the oil channel with no smoothing. Optimiser (the
    release: Adam 2e-4, batch 4, LR / 5 on plateaus) and input normalisation
    live in the configs.

    Args:
        in_channels (Sequence[int]): Encoder channels, e.g. ``[64, 128, 256,
            512]``.
        channels (int): Width of the final convs. Defaults to 32.
        center_dilations (Sequence[int]): Of :class:`DilatedCenter`.
        boundary_mode (str | None): ``'multiply'``, ``'add'`` or None.
        boundary_kernel (int): Boundary width (odd). Defaults to 3.
        boundary_tolerance (int): Matching tolerance (odd). Defaults to 5.
        boundary_weight (float): Weight of ``loss_boundary``; only with
            ``boundary_mode='add'``.
        final_kernel (int): Final full-conv kernel. Defaults to 4.
        final_norm (bool): Norm in the final convs. Defaults to False.
        **kwargs: :class:`LinkNetHead` / ``BaseDecodeHead`` arguments.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 32,
                 center_dilations: Sequence[int] = (1, 2, 4, 8),
                 boundary_mode: Optional[str] = 'multiply',
                 boundary_kernel: int = 3,
                 boundary_tolerance: int = 5,
                 boundary_weight: float = 1.0,
                 final_kernel: int = 4,
                 final_norm: bool = False,
                 **kwargs) -> None:
        if boundary_mode not in BOUNDARY_MODES:
            raise ValueError(f'CBDNetHead: boundary_mode={boundary_mode!r}; expected one of {BOUNDARY_MODES}')
        if boundary_mode != 'add' and boundary_weight != 1.0:
            raise ValueError(f'CBDNetHead: boundary_weight={boundary_weight} is only used with '
                             f"boundary_mode='add' (got {boundary_mode!r})")
        if boundary_kernel < 3 or boundary_kernel % 2 == 0 or boundary_tolerance < 1 or boundary_tolerance % 2 == 0:
            raise ValueError(f'CBDNetHead: boundary_kernel={boundary_kernel} (odd, >= 3) and boundary_tolerance='
                             f'{boundary_tolerance} (odd, >= 1)')
        super().__init__(in_channels, channels, final_kernel=final_kernel, final_norm=final_norm, **kwargs)
        if boundary_mode is not None and self.out_channels != self.num_classes:
            raise ValueError(f'CBDNetHead: the boundary loss needs softmax logits, out_channels == num_classes; got '
                             f'out_channels={self.out_channels}, num_classes={self.num_classes}')
        self.dblock = DilatedCenter(self.in_channels[-1], center_dilations)
        self.boundary_mode = boundary_mode
        self.boundary_kernel = boundary_kernel
        self.boundary_tolerance = boundary_tolerance
        self.boundary_weight = float(boundary_weight)

    def center(self, x: Tensor) -> Tensor:
        """The dilated center block on the deepest level."""
        return self.dblock(x)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """mmseg's losses of ``loss_decode``, combined with the boundary F1 loss.

        Args:
            seg_logits (Tensor): (N, K, h, w) logits.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``loss_*`` terms, ``acc_seg`` and, by mode,
            ``boundary_factor`` or ``loss_boundary``.
        """
        losses = super().loss_by_feat(seg_logits, batch_data_samples)
        if self.boundary_mode is None:
            return losses
        labels = self._stack_batch_gt(batch_data_samples).squeeze(1)
        logits = resize(seg_logits, size=labels.shape[-2:], mode='bilinear', align_corners=self.align_corners)
        boundary = boundary_f1_loss(logits.softmax(dim=1), labels, self.ignore_index, self.boundary_kernel,
                                    self.boundary_tolerance)
        if self.boundary_mode == 'add':
            losses['loss_boundary'] = self.boundary_weight * boundary
        else:
            for key in [k for k in losses if k.startswith('loss')]:
                losses[key] = losses[key] * boundary
            losses['boundary_factor'] = boundary.detach()
        return losses
