"""Decoding of the on-disk label formats of the SAR oil-spill datasets.

Three formats exist:

* ``threshold`` (SOS, Zhu et al. 2022): RGB PNG, oil = (255, 255, 255), background = (0, 0, 0), and about half of
  the training masks carry intermediate values along edges (lossy-compression residue). Decoded as
  ``label = (gray >= threshold)`` -> {0: background, 1: oil}. Oil must never be read as 255, which mmseg treats as
  the ignore index.
* ``index`` (OSD ``labels_1D/``): single-channel class indices ``0..K-1``.
* ``palette`` (OSD ``labels/``): RGB colour-coded classes; every pixel must carry exactly one of the palette
  colours, otherwise the file is rejected (an unknown colour is never guessed).
"""
from typing import Optional, Sequence

import numpy as np

LABEL_FORMATS = ('threshold', 'index', 'palette')


class LabelDecodeError(ValueError):
    """A label map on disk does not match the dataset's format."""


def decode_threshold(mask: np.ndarray, threshold: int = 128, path: str = '<array>') -> np.ndarray:
    """Binary mask decoding used by SOS: ``gray >= threshold`` is oil (1).

    Args:
        mask: (H, W) or (H, W, C) uint8 mask.
        threshold: Values ``>= threshold`` become 1 (CBD-Net's code uses ``>= 0.5`` on [0, 1]).
        path: File name used in error messages.

    Returns:
        (H, W) uint8 array with values in {0, 1}.
    """
    if mask.dtype != np.uint8:
        raise LabelDecodeError(f'{path}: expected an 8-bit mask, got dtype {mask.dtype}')
    if mask.ndim == 3:
        # Masks are stored as RGB with three equal channels; take the max so that a single bright channel
        # (never seen in SOS, but cheap to be robust to) still counts as oil.
        mask = mask.max(axis=2)
    elif mask.ndim != 2:
        raise LabelDecodeError(f'{path}: expected a (H, W) or (H, W, C) mask, got shape {mask.shape}')
    return (mask >= threshold).astype(np.uint8)


def decode_index(mask: np.ndarray, num_classes: int, path: str = '<array>',
                 ignore_index: Optional[int] = 255) -> np.ndarray:
    """Single-channel class-index masks (OSD ``labels_1D``).

    Args:
        mask: (H, W) integer mask (a 3-channel mask with equal channels is accepted).
        num_classes: Valid labels are ``0..num_classes-1``.
        path: File name used in error messages.
        ignore_index: A value that is allowed in addition (left as is). ``None`` allows none.

    Returns:
        (H, W) uint8 array.
    """
    if mask.ndim == 3:
        if not (np.array_equal(mask[..., 0], mask[..., 1]) and np.array_equal(mask[..., 0], mask[..., 2])):
            raise LabelDecodeError(f'{path}: expected a single-channel class-index mask, got {mask.shape[2]} '
                                   'channels that differ (is this an RGB colour label?)')
        mask = mask[..., 0]
    values = np.unique(mask)
    bad = [int(v) for v in values if v >= num_classes and v != ignore_index or v < 0]
    if bad:
        raise LabelDecodeError(f'{path}: label values {bad[:10]} outside the valid classes 0..{num_classes - 1}'
                               + (f' (and ignore {ignore_index})' if ignore_index is not None else ''))
    return mask.astype(np.uint8)


def decode_palette(mask_rgb: np.ndarray, palette: Sequence[Sequence[int]], path: str = '<array>') -> np.ndarray:
    """Exact RGB colour -> class index conversion (OSD ``labels/``).

    Args:
        mask_rgb: (H, W, 3) uint8 mask in RGB order.
        palette: ``palette[k]`` is the (R, G, B) colour of class ``k``.
        path: File name used in error messages.

    Returns:
        (H, W) uint8 class-index array.

    Raises:
        LabelDecodeError: if any pixel has a colour that is not in ``palette``; the message names the first unknown
            colours and how many pixels carry them.
    """
    if mask_rgb.ndim != 3 or mask_rgb.shape[2] != 3:
        raise LabelDecodeError(f'{path}: expected an RGB (H, W, 3) colour label, got shape {mask_rgb.shape}')
    codes = (mask_rgb[..., 0].astype(np.int64) << 16) | (mask_rgb[..., 1].astype(np.int64) << 8) | mask_rgb[..., 2]
    pal_codes = np.array([(r << 16) | (g << 8) | b for r, g, b in palette], dtype=np.int64)
    order = np.argsort(pal_codes)
    sorted_codes = pal_codes[order]
    pos = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    known = sorted_codes[pos] == codes
    if not known.all():
        unknown, counts = np.unique(codes[~known], return_counts=True)
        shown = ', '.join(f'({c >> 16},{(c >> 8) & 255},{c & 255}) x{n}' for c, n in zip(unknown[:5], counts[:5]))
        raise LabelDecodeError(f'{path}: {int((~known).sum())} pixels with colours not in the palette '
                               f'{[tuple(p) for p in palette]}: {shown}')
    return order[pos].astype(np.uint8)


def encode_palette(label: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Class-index map (H, W) -> RGB colour label (H, W, 3), the inverse of :func:`decode_palette`."""
    pal = np.asarray(palette, dtype=np.uint8)
    return pal[label]


def decode_label(mask: np.ndarray, label_format: str, path: str = '<array>', *, num_classes: int = 2,
                 threshold: int = 128, palette: Optional[Sequence[Sequence[int]]] = None) -> np.ndarray:
    """Dispatch on ``label_format`` (one of :data:`LABEL_FORMATS`). ``mask`` is RGB for ``palette``."""
    if label_format == 'threshold':
        return decode_threshold(mask, threshold, path)
    if label_format == 'index':
        return decode_index(mask, num_classes, path)
    if label_format == 'palette':
        if palette is None:
            raise ValueError('label_format="palette" needs a palette')
        return decode_palette(mask, palette, path)
    raise ValueError(f'unknown label_format {label_format!r}; expected one of {LABEL_FORMATS}')


def binary_01_message(mask: np.ndarray, threshold: int, path: str = '<array>') -> Optional[str]:
    """A warning text when a ``threshold``-format mask looks saved as 0/1 instead of 0/255, else None.

    Such a mask (maximum value 1, below ``threshold``) decodes as all background: an SOS set saved this way would
    train on 0 % oil without an error. ``threshold=1`` reads it correctly.
    """
    if threshold > 1 and mask.size and int(mask.max()) == 1:
        return (f'{path}: binary mask with maximum value 1, but oil is expected as 255 (threshold {threshold}), so '
                'every pixel reads as background. If the masks are stored as 0/1, set the dataset\'s threshold=1 '
                '(or save them as 0/255)')
    return None
