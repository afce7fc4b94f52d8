"""Balancing factor ``b`` between SAR images and segmentation masks (Eq. 1-4, 11-20).

SAR-JointNet diffuses a SAR image ``x`` and its one-hot mask ``m`` with the same
noise schedule. Their signal-to-noise ratios differ by the ratio of their mean
frequency powers (Eq. 3/16), so the mask is scaled by ``b`` (Eq. 1/17) chosen to
make both SNRs equal (Eq. 19):

    b = sqrt(P_image / P_mask)                                        (Eq. 4 / 20)

where ``P(x) = mean_{u,v} |F(x)(u, v)|^2`` is the mean power over all 2D DFT
frequencies, DC term included (Eq. 13), and the bars denote averages over the
whole training set (ratio of the dataset means, not mean of per-pair ratios).

Conventions used here (the paper does not spell them out; these reproduce the
values quoted for the SOS data, see ``../shared/data/README.md``):

* Images are scaled to [-1, 1] (``x / 127.5 - 1`` for 8-bit data). A multi-channel
  image contributes the mean of its per-channel powers; SAR tiles stored as
  3 identical channels therefore give the same value as their grayscale version.
* Masks are one-hot encoded over ``K = num_classes`` channels with values in
  {-1, 1} (``2 * onehot - 1``); ``P_mask`` is the mean over all K channels.
* FFT normalisation: ``fft_norm`` is passed to :func:`numpy.fft.fft2`. The default
  ``'backward'`` is numpy's unnormalised forward DFT (Eq. 11), for which, by
  Parseval, ``mean |X|^2 = sum x^2 = H * W * mean(x^2)``. The factor ``H * W``
  cancels in the ratio as long as image and mask have the same size (they do),
  but with ``'backward'`` larger tiles weigh more in the dataset average; use
  ``fft_norm='ortho'`` (``mean |X|^2 = mean(x^2)``) to weigh every tile equally
  when tile sizes differ. For fixed-size datasets both give the same ``b``.
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

_VALID_FFT_NORMS = ('backward', 'ortho', 'forward')


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f'{name} must be a numpy array or torch tensor, got {type(x)!r}')
    return x


def mean_fft_power(x: ArrayLike, fft_norm: str = 'backward') -> float:
    """Mean power of the 2D DFT of ``x`` over all frequencies (Eq. 13).

    Args:
        x (np.ndarray | torch.Tensor): Signal of shape ``(H, W)`` or ``(C, H, W)``.
            For ``(C, H, W)`` the result is the mean over channels of the
            per-channel mean power.
        fft_norm (str): ``norm`` argument of :func:`numpy.fft.fft2`. ``'backward'``
            (default, unnormalised forward DFT) gives ``H * W * mean(x**2)``;
            ``'ortho'`` gives ``mean(x**2)``.

    Returns:
        float: ``mean_{c,u,v} |FFT2(x_c)(u, v)|^2`` computed in float64.
    """
    if fft_norm not in _VALID_FFT_NORMS:
        raise ValueError(f'fft_norm must be one of {_VALID_FFT_NORMS}, got {fft_norm!r}')
    x = _to_numpy(x, 'x').astype(np.float64, copy=False)
    if x.ndim not in (2, 3):
        raise ValueError(f'expected a (H, W) or (C, H, W) array, got shape {x.shape}')
    spectrum = np.fft.fft2(x, axes=(-2, -1), norm=fft_norm)  # Eq. 11
    return float(np.mean(spectrum.real ** 2 + spectrum.imag ** 2))  # Eq. 13


def image_to_signed_unit(image: ArrayLike, max_value: float = 255.0) -> np.ndarray:
    """Scale an image from ``[0, max_value]`` to ``[-1, 1]``.

    Args:
        image (np.ndarray | torch.Tensor): ``(H, W)`` or ``(C, H, W)`` image with
            values in ``[0, max_value]`` (8-bit data: ``max_value=255``).
        max_value (float): Largest representable value.

    Returns:
        np.ndarray: float64 array of the same shape, ``image / (max_value / 2) - 1``.
    """
    image = _to_numpy(image, 'image').astype(np.float64)
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > max_value:
        raise ValueError(f'image values must lie in [0, {max_value}], got [{lo}, {hi}]')
    return image / (max_value / 2.0) - 1.0


def label_to_signed_onehot(label: ArrayLike, num_classes: int) -> np.ndarray:
    """One-hot encode a class-index map into {-1, 1} (the normalised mask of Eq. 1).

    Args:
        label (np.ndarray | torch.Tensor): Integer class indices of shape ``(H, W)``
            (a leading singleton axis ``(1, H, W)`` is accepted), every value in
            ``[0, num_classes)``.
        num_classes (int): Number of classes ``K``.

    Returns:
        np.ndarray: float64 array ``(K, H, W)``; 1 at the pixel's class, -1 elsewhere.
    """
    label = _to_numpy(label, 'label')
    if label.ndim == 3 and label.shape[0] == 1:
        label = label[0]
    if label.ndim != 2:
        raise ValueError(f'label must have shape (H, W), got {label.shape}')
    if not np.issubdtype(label.dtype, np.integer):
        raise TypeError(f'label must hold integer class indices, got dtype {label.dtype}')
    bad = (label < 0) | (label >= num_classes)
    if bad.any():
        raise ValueError(
            f'label values must lie in [0, {num_classes}) (no ignore pixels allowed when '
            f'computing the balancing factor); found {np.unique(label[bad]).tolist()}')
    onehot = label[None] == np.arange(num_classes).reshape(-1, 1, 1)
    return onehot.astype(np.float64) * 2.0 - 1.0


class BalancingFactorAccumulator:
    """Streaming, constant-memory estimate of the balancing factor (Eq. 4 / 20).

    Keeps three float64 running sums: ``sum P(image)``, ``sum P(mask)`` and the
    number of pairs; :meth:`value` returns ``sqrt(mean P_image / mean P_mask)``.

    Args:
        num_classes (int): Number of classes ``K`` of the one-hot masks.
        fft_norm (str): ``norm`` of :func:`numpy.fft.fft2`; see the module docstring.

    Example:
        >>> acc = BalancingFactorAccumulator(num_classes=2)
        >>> for img_uint8, label in pairs:                  # doctest: +SKIP
        ...     acc.update(image_to_signed_unit(img_uint8), label)
        >>> b = acc.value()                                  # doctest: +SKIP
    """

    def __init__(self, num_classes: int, fft_norm: str = 'backward') -> None:
        if num_classes < 2:
            raise ValueError(f'num_classes must be >= 2, got {num_classes}')
        if fft_norm not in _VALID_FFT_NORMS:
            raise ValueError(f'fft_norm must be one of {_VALID_FFT_NORMS}, got {fft_norm!r}')
        self.num_classes = int(num_classes)
        self.fft_norm = fft_norm
        self.sum_image_power = 0.0
        self.sum_mask_power = 0.0
        self.count = 0

    def update(self, image: ArrayLike, mask: ArrayLike) -> None:
        """Add one image/mask pair.

        Args:
            image (np.ndarray | torch.Tensor): Image already scaled to [-1, 1],
                shape ``(H, W)`` or ``(C, H, W)`` (see :func:`image_to_signed_unit`).
            mask (np.ndarray | torch.Tensor): Integer class-index map ``(H, W)``
                with values in ``[0, num_classes)``; it is one-hot encoded into
                {-1, 1} here (:func:`label_to_signed_onehot`).
        """
        image = _to_numpy(image, 'image')
        lo, hi = float(image.min()), float(image.max())
        if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
            raise ValueError(f'image must be scaled to [-1, 1], got values in [{lo}, {hi}]')
        signed = label_to_signed_onehot(mask, self.num_classes)
        if image.shape[-2:] != signed.shape[-2:]:
            raise ValueError(f'image {image.shape} and mask {signed.shape} sizes differ')
        self.sum_image_power += mean_fft_power(image, self.fft_norm)
        self.sum_mask_power += mean_fft_power(signed, self.fft_norm)
        self.count += 1

    def merge(self, other: 'BalancingFactorAccumulator') -> None:
        """Add the sums of another accumulator (e.g. one per data-loader worker/rank)."""
        if (other.num_classes, other.fft_norm) != (self.num_classes, self.fft_norm):
            raise ValueError('cannot merge accumulators with different num_classes/fft_norm: '
                             f'{(self.num_classes, self.fft_norm)} vs '
                             f'{(other.num_classes, other.fft_norm)}')
        self.sum_image_power += other.sum_image_power
        self.sum_mask_power += other.sum_mask_power
        self.count += other.count

    def mean_powers(self) -> Tuple[float, float]:
        """Return ``(mean P_image, mean P_mask)`` over the pairs seen so far."""
        if self.count == 0:
            raise RuntimeError('BalancingFactorAccumulator.value() called before any update()')
        return self.sum_image_power / self.count, self.sum_mask_power / self.count

    def value(self) -> float:
        """Return ``b = sqrt(mean P_image / mean P_mask)`` (Eq. 4 / 20)."""
        p_image, p_mask = self.mean_powers()
        return float(np.sqrt(p_image / p_mask))  # Eq. 20


def compute_balancing_factor(pairs: Iterable[Tuple[ArrayLike, ArrayLike]],
                             num_classes: int,
                             fft_norm: str = 'backward',
                             image_max_value: Optional[float] = None) -> float:
    """Balancing factor of a dataset given as ``(image, class-index mask)`` pairs.

    Args:
        pairs (Iterable[tuple]): ``(image, mask)`` pairs; ``image`` is ``(H, W)``
            or ``(C, H, W)``, ``mask`` is an integer ``(H, W)`` map.
        num_classes (int): Number of classes ``K``.
        fft_norm (str): ``norm`` of :func:`numpy.fft.fft2`.
        image_max_value (float, optional): If given, images are raw values in
            ``[0, image_max_value]`` and are scaled to [-1, 1] here (255 for
            8-bit tiles); if None they must already be in [-1, 1].

    Returns:
        float: ``b`` (Eq. 4 / 20).
    """
    acc = BalancingFactorAccumulator(num_classes, fft_norm)
    for image, mask in pairs:
        if image_max_value is not None:
            image = image_to_signed_unit(image, image_max_value)
        acc.update(image, mask)
    return acc.value()
