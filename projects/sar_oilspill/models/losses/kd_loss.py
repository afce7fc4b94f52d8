"""Knowledge-distillation loss on per-pixel teacher logits (paper Eq. 8-9)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS

REDUCTIONS = ('mean', 'sum', 'none')


@MODELS.register_module()
class KDLoss(nn.Module):
    """Temperature-scaled cross-entropy between teacher and student (Hinton).

    For every pixel, with ``K`` classes, teacher logits ``l`` and student
    logits ``z``::

        p_k = softmax(l / T)_k                          # Eq. 8 (soft label)
        L   = T^2 * ( - sum_k p_k * log softmax(z / T)_k )   # Eq. 9

    This is the cross-entropy form of the paper. It equals
    ``T^2 * (KL(p || q) + H(p))``; ``H(p)`` does not depend on the student, so
    the gradients are the same as for the KL form, but the loss does not go
    down to 0. The teacher logits are detached.

    Reduction over pixels: ``'mean'`` averages over the valid pixels (all
    pixels if no ``valid_mask``; 0 when there are none), ``'sum'`` sums over
    them, ``'none'`` returns the (N, H, W) map with invalid pixels set to 0.

    Student/teacher size mismatch: if the spatial sizes differ, the student
    logits are bilinearly resized to the teacher's size (mmseg heads do the
    same for hard labels) before the loss.

    Args:
        temperature (float): ``T > 0``. Defaults to 1.0.
        loss_weight (float): Multiplies the loss. Defaults to 1.0.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'``.
            Defaults to ``'mean'``.
        align_corners (bool): For the resize of the student logits.
            Defaults to False.
        loss_name (str): Key in the loss dict; must start with ``loss_`` to
            be back-propagated. Defaults to ``'loss_kd'``.
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 align_corners: bool = False,
                 loss_name: str = 'loss_kd') -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f'KDLoss: temperature={temperature} must be > 0')
        if reduction not in REDUCTIONS:
            raise ValueError(f'KDLoss: reduction={reduction!r}; expected one '
                             f'of {REDUCTIONS}')
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.align_corners = align_corners
        self._loss_name = loss_name

    #: Target a soft-label decode head passes (see ``SoftLabelLossMixin``):
    #: the teacher's logits, with the mask of the pixels that carry them.
    soft_target = 'logits'

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the KD loss.

        Args:
            pred (Tensor): Student logits, (N, K, h, w).
            target (Tensor): Teacher logits (not probabilities), (N, K, H, W),
                floating point.
            valid_mask (Tensor, optional): (N, H, W) bool; pixels that carry
                a soft label. Defaults to all pixels.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: Scalar loss (or (N, H, W) map for ``'none'``), already
            multiplied by ``loss_weight``.
        """
        reduction = reduction_override or self.reduction
        if reduction not in REDUCTIONS:
            raise ValueError(f'KDLoss: reduction_override={reduction!r}; '
                             f'expected one of {REDUCTIONS}')
        if target.dim() != 4 or not target.is_floating_point():
            raise ValueError(
                'KDLoss: target must be the teacher logits, a float tensor '
                f'(N, K, H, W); got dtype {target.dtype}, shape '
                f'{tuple(target.shape)}. Hard labels cannot be distilled; use '
                'KDLoss as a decode-head loss of SoftLabelEncoderDecoder.')
        if pred.dim() != 4 or pred.shape[:2] != target.shape[:2]:
            raise ValueError(
                f'KDLoss: student logits {tuple(pred.shape)} and teacher '
                f'logits {tuple(target.shape)} must agree in batch size and '
                'number of classes')
        if pred.shape[-2:] != target.shape[-2:]:
            pred = F.interpolate(
                pred,
                size=target.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners)
        t = self.temperature
        # at least float32 (fp16/bf16 logits under AMP), float64 kept
        dtype = torch.promote_types(pred.dtype, torch.float32)
        p = F.softmax(target.detach().to(dtype) / t, dim=1)  # Eq. 8
        log_q = F.log_softmax(pred.to(dtype) / t, dim=1)
        loss = -(p * log_q).sum(dim=1) * (t * t)  # Eq. 9, (N, H, W)

        if valid_mask is not None:
            if valid_mask.shape != loss.shape:
                raise ValueError(f'KDLoss: valid_mask shape '
                                 f'{tuple(valid_mask.shape)}, expected '
                                 f'{tuple(loss.shape)}')
            mask = valid_mask.to(loss.dtype)
            loss = loss * mask
            num_valid = mask.sum()
        else:
            num_valid = loss.new_tensor(float(loss.numel()))

        if reduction == 'mean':
            loss = loss.sum() / num_valid.clamp(min=1.)
        elif reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: Key of this loss in the loss dict."""
        return self._loss_name
