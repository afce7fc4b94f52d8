"""Multi-class soft Dice loss (Sudre et al. 2017) with pixel masking."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS


@MODELS.register_module()
class SoftDiceLoss(nn.Module):
    """Soft Dice loss on softmax probabilities, hard or soft targets.

    With ``r_{k,n}`` the target probability of class ``k`` at pixel ``n`` and
    ``p_{k,n} = softmax(logits)_{k,n}``, sums run over the valid pixels of the
    whole batch (a batch Dice, stabler for rare classes than a per-image Dice):

    * plain (default)::

          loss = 1 - 1/K * sum_k (2 sum_n r p + s) / (sum_n r + sum_n p + s)

    * ``use_generalised_weights=True`` (Sudre's generalised Dice)::

          w_k  = 1 / (sum_n r_{k,n})^2
          loss = 1 - (2 sum_k w_k sum_n r p + s)
                   / (sum_k w_k sum_n (r + p) + s)

      A class absent from the target would get ``w_k = inf``; as in MONAI's
      ``GeneralizedDiceLoss``, such weights are replaced by the largest weight
      of the present classes (all weights become 0, and the loss 0, if every
      class is absent). With soft targets a class is never exactly absent:
      a target mass ``sum_n r_{k,n}`` below one pixel counts as absent too,
      otherwise a class the teacher gives 1e-6 per pixel would get a weight
      ~1e12 times that of a present class. For hard targets (masses 0 or
      >= 1) this is Sudre's / MONAI's rule unchanged.

      The weights scale as 1 / pixels^2, so ``smooth`` defaults to 0 here:
      ``s = 1`` would outweigh ``2 sum_k w_k sum_n r p`` (~1 / pixels) and
      flatten the loss. Sudre's formula has no smoothing term.

    ``s`` is ``smooth``. Targets: hard labels (N, H, W) (long; pixels equal to
    ``ignore_index`` are masked, i.e. they drop out of every sum, the class
    channel is NOT dropped) or soft targets (N, K, H, W) (class probabilities,
    e.g. the teacher's softmax). An extra ``valid_mask`` (N, H, W) masks
    pixels in both cases. A batch with no valid pixel gives 0.

    If the spatial sizes differ, the logits are bilinearly resized to the
    target size.

    Args:
        smooth (float, optional): ``s`` above. Defaults to 1.0 for the plain
            Dice (as mmseg's DiceLoss; a class absent from target and
            prediction then scores Dice 1) and to 0.0 for the generalised one.
        use_generalised_weights (bool): Use Sudre's ``1/(sum r)^2`` class
            weights. Defaults to False (plain, class-mean Dice); the DAKD
            configs use True (``configs/_base_/models/dakd_losses.py``).
        ignore_index (int): Label value masked out in hard targets.
            Defaults to 255.
        loss_weight (float): Multiplies the loss. Defaults to 1.0.
        align_corners (bool): For the resize of the logits. Defaults to False.
        loss_name (str): Key in the loss dict. Defaults to ``'loss_dice'``.
        soft_temperature (float): Temperature ``T`` of the teacher's softmax
            that a soft-label decode head passes as the target where a pixel
            has teacher logits and no hard label: ``softmax(logits / T)``.
            Defaults to 1.0 (the teacher's own estimate); the KD temperature
            (e.g. 2) makes the Dice targets no harder than the KD ones. Read
            by ``SegTargets.loss``; a target passed directly is used as is.
    """

    def __init__(self,
                 smooth: Optional[float] = None,
                 use_generalised_weights: bool = False,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 align_corners: bool = False,
                 loss_name: str = 'loss_dice',
                 soft_temperature: float = 1.0) -> None:
        super().__init__()
        if not soft_temperature > 0:
            raise ValueError(f'SoftDiceLoss: soft_temperature={soft_temperature} '
                             'must be > 0')
        self.soft_temperature = float(soft_temperature)
        if smooth is None:
            smooth = 0.0 if use_generalised_weights else 1.0
        if smooth < 0:
            raise ValueError(f'SoftDiceLoss: smooth={smooth} must be >= 0')
        self.smooth = float(smooth)
        self.use_generalised_weights = use_generalised_weights
        self.ignore_index = ignore_index
        self.loss_weight = float(loss_weight)
        self.align_corners = align_corners
        self._loss_name = loss_name

    #: Target a soft-label decode head passes (see ``SoftLabelLossMixin``):
    #: per-pixel class probabilities, hard one-hot or the teacher's softmax.
    soft_target = 'probs'

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None) -> Tensor:
        """Compute the soft Dice loss.

        Args:
            pred (Tensor): Logits, (N, K, h, w).
            target (Tensor): Hard labels (N, H, W), integer, or target
                probabilities (N, K, H, W), floating point.
            valid_mask (Tensor, optional): (N, H, W) bool, pixels to use.
            weight (Tensor, optional): Pixel weights from mmseg's samplers;
                not supported, must be None (accepted only so that a stock
                mmseg head can call this loss).
            ignore_index (int, optional): Overrides ``self.ignore_index`` for
                hard targets (stock mmseg heads pass it).

        Returns:
            Tensor: Scalar loss multiplied by ``loss_weight``.
        """
        if weight is not None:
            raise NotImplementedError(
                'SoftDiceLoss: pixel weights (e.g. from an OHEM sampler) are '
                'not supported; set sampler=None in the decode head')
        ignore_index = self.ignore_index if ignore_index is None \
            else ignore_index
        if pred.dim() != 4:
            raise ValueError('SoftDiceLoss: pred must be (N, K, H, W) '
                             f'logits, got {tuple(pred.shape)}')
        num_classes = pred.shape[1]
        if target.is_floating_point():
            if target.dim() != 4 or target.shape[:2] != pred.shape[:2]:
                raise ValueError(
                    f'SoftDiceLoss: soft target {tuple(target.shape)} must '
                    f'be (N, K, H, W) with N, K = {tuple(pred.shape[:2])}')
            target_probs = target.detach()
            valid = torch.ones(
                target.shape[0], *target.shape[-2:], dtype=torch.bool,
                device=target.device)
        else:
            if target.dim() != 3 or target.shape[0] != pred.shape[0]:
                raise ValueError(
                    f'SoftDiceLoss: hard target {tuple(target.shape)} must be '
                    f'(N, H, W) with N = {pred.shape[0]}')
            valid = target != ignore_index
            labels = torch.where(valid, target, torch.zeros_like(target))
            if labels.numel() and (labels.min() < 0
                                   or labels.max() >= num_classes):
                raise ValueError(
                    f'SoftDiceLoss: labels must be in [0, {num_classes}) or '
                    f'{ignore_index}; got values in [{int(labels.min())}, '
                    f'{int(labels.max())}]')
            target_probs = F.one_hot(labels.long(), num_classes).permute(
                0, 3, 1, 2)
        if valid_mask is not None:
            if valid_mask.shape != valid.shape:
                raise ValueError(f'SoftDiceLoss: valid_mask shape '
                                 f'{tuple(valid_mask.shape)}, expected '
                                 f'{tuple(valid.shape)}')
            valid = valid & valid_mask.bool()
        if pred.shape[-2:] != target_probs.shape[-2:]:
            pred = F.interpolate(
                pred,
                size=target_probs.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners)

        # at least float32 (fp16/bf16 logits under AMP), float64 kept
        dtype = torch.promote_types(pred.dtype, torch.float32)
        mask = valid.unsqueeze(1).to(dtype)  # (N, 1, H, W)
        probs = F.softmax(pred.to(dtype), dim=1) * mask
        target_probs = target_probs.to(dtype) * mask
        dims = (0, 2, 3)
        intersection = (probs * target_probs).sum(dims)  # (K,)
        pred_sum = probs.sum(dims)
        target_sum = target_probs.sum(dims)
        s = self.smooth
        if self.use_generalised_weights:
            absent = target_sum < 1.0  # less than one pixel of target mass
            w = 1.0 / torch.where(absent, torch.ones_like(target_sum),
                                  target_sum).pow(2)
            w = torch.where(absent, torch.zeros_like(w), w)
            w = w + absent.to(dtype) * w.max()
            numer = 2.0 * (w * intersection).sum() + s
            denom = (w * (pred_sum + target_sum)).sum() + s
        else:
            numer = 2.0 * intersection + s
            denom = pred_sum + target_sum + s
        # denom == 0 only when smooth == 0 and nothing is left to compare.
        dice = torch.where(denom > 0, numer / denom.clamp(min=1e-12),
                           torch.ones_like(denom)).mean()
        return self.loss_weight * (1.0 - dice)

    @property
    def loss_name(self) -> str:
        """str: Key of this loss in the loss dict."""
        return self._loss_name
