"""Image grids of generated SAR tiles with their labels overlaid (cv2 / numpy only)."""
import math
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.atomic import atomic_write_bytes
from .image_utils import as_uint8_rgb

#: SOS has classes (background, oil_spill) with palette black / white; white is hard to see over SAR, so
#: overlays use red for oil. Background is never tinted (``skip_background``).
SOS_OVERLAY_PALETTE: List[Tuple[int, int, int]] = [(0, 0, 0), (255, 0, 0)]


def default_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """Overlay palette by class count: OSD's five colours, SOS's red-for-oil, else a fixed random palette."""
    if num_classes == 5:
        from ..datasets.osd import OSDDataset
        return [tuple(int(v) for v in c) for c in OSDDataset.METAINFO['palette']]
    if num_classes == 2:
        return list(SOS_OVERLAY_PALETTE)
    rng = np.random.default_rng(0)
    return [(0, 0, 0)] + [tuple(int(v) for v in rng.integers(64, 256, 3)) for _ in range(num_classes - 1)]


def overlay_palette(palette: Optional[Sequence[Sequence[int]]], num_classes: int) -> List[Tuple[int, int, int]]:
    """The dataset's palette for overlays, or :func:`default_palette` when there is none or it is SOS's
    black/white (white oil is invisible over SAR; the default shows it in red)."""
    if palette is None or [list(c) for c in palette] == [[0, 0, 0], [255, 255, 255]]:
        return default_palette(num_classes)
    return [tuple(int(v) for v in c) for c in palette]


def overlay_labels(image: np.ndarray, label: np.ndarray, palette: Sequence[Sequence[int]], alpha: float = 0.5,
                   skip_background: bool = True) -> np.ndarray:
    """Blend class colours over one image.

    Args:
        image: uint8 (H, W) grey or (H, W, 3) RGB.
        label: int (H, W) class indices.
        palette: RGB colour per class.
        alpha: Opacity of the colour (0 = image only, 1 = colour only).
        skip_background: Leave class-0 pixels untinted.

    Returns:
        uint8 (H, W, 3) RGB.
    """
    image = np.asarray(image)
    label = np.asarray(label)
    if label.shape != image.shape[:2]:
        raise ValueError(f'overlay_labels: label {label.shape} and image {image.shape[:2]} differ')
    colours = np.asarray(palette, np.float32).reshape(-1, 3)
    if label.size and (label.min() < 0 or label.max() >= len(colours)):
        raise ValueError(f'overlay_labels: label values {np.unique(label)[:10].tolist()} but only '
                         f'{len(colours)} palette colours')
    out = np.empty(label.shape + (3, ), np.uint8)
    # in strips of rows: float work buffers of a few MB even for whole satellite scenes
    step = max(1, (1 << 20) // max(1, label.shape[1]))
    for r0 in range(0, label.shape[0], step):
        rgb = as_uint8_rgb(image[r0:r0 + step]).astype(np.float32)
        lab = label[r0:r0 + step]
        mask = lab > 0 if skip_background else np.ones(lab.shape, bool)
        colour = colours[lab[mask].astype(np.int64)]
        rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * colour
        out[r0:r0 + step] = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return out


def make_generation_grid(images, labels, palette: Sequence[Sequence[int]], ncols: int = 4, alpha: float = 0.5,
                         pad: int = 2, pad_value: int = 255, skip_background: bool = True) -> np.ndarray:
    """Lay out (image | image with label overlay) pairs in a grid.

    Every sample occupies two panels side by side, the SAR tile and the same tile with its labels overlaid;
    ``ncols`` samples per row. Panels are separated (and framed) by ``pad`` pixels of ``pad_value``, so the
    grid is ``rows * H + (rows + 1) * pad`` high and ``2 * ncols * W + (2 * ncols + 1) * pad`` wide, with
    ``rows = ceil(N / ncols)`` (``ncols`` is lowered to N when N is smaller).

    Args:
        images: uint8 (N, H, W) or (N, H, W, 3) RGB tiles (or a sequence of equal-size tiles).
        labels: int (N, H, W) class maps, or float (N, K, H, W) logits (their argmax is drawn).
        palette: RGB colour per class.
        ncols: Samples per row.
        alpha: Overlay opacity.
        pad: Gap between panels in pixels.
        pad_value: Grey level of the gaps.
        skip_background: Leave class 0 untinted.

    Returns:
        uint8 (height, width, 3) RGB grid.
    """
    images = [np.asarray(im) for im in images]
    labels = [np.asarray(lb) for lb in labels]
    if not images:
        raise ValueError('make_generation_grid: no images')
    if len(images) != len(labels):
        raise ValueError(f'make_generation_grid: {len(images)} images but {len(labels)} label maps')
    labels = [lb.argmax(axis=0) if lb.ndim == 3 else lb for lb in labels]
    h, w = images[0].shape[:2]
    n = len(images)
    ncols = max(1, min(int(ncols), n))
    rows = math.ceil(n / ncols)
    height, width = rows * h + (rows + 1) * pad, 2 * ncols * w + (2 * ncols + 1) * pad
    grid = np.full((height, width, 3), pad_value, np.uint8)
    for i, (image, label) in enumerate(zip(images, labels)):
        if image.shape[:2] != (h, w):
            raise ValueError(f'make_generation_grid: image {i} is {image.shape[:2]}, the first is {(h, w)}')
        r, c = divmod(i, ncols)
        y = pad + r * (h + pad)
        x = pad + 2 * c * (w + pad)
        grid[y:y + h, x:x + w] = as_uint8_rgb(image)
        x2 = x + w + pad
        grid[y:y + h, x2:x2 + w] = overlay_labels(image, label, palette, alpha, skip_background)
    return grid


def save_generation_grid(images, labels, palette: Optional[Sequence[Sequence[int]]], path: str,
                         ncols: int = 4, alpha: float = 0.5, pad: int = 2) -> str:
    """Write :func:`make_generation_grid` as an image file (PNG unless ``path`` says otherwise), atomically.

    Args:
        images: uint8 (N, H, W) or (N, H, W, 3) RGB generated tiles.
        labels: int (N, H, W) class maps, or float (N, K, H, W) logits.
        palette: RGB tuple per class; ``None`` picks :func:`default_palette` from the class count (from the
            logits' K, else the largest label + 1).
        path: Output file; its folder is created. Written to a temporary name and renamed.
        ncols: Samples (image + overlay pairs) per row.
        alpha: Overlay opacity.
        pad: Gap between panels in pixels.

    Returns:
        ``path``.
    """
    if palette is None:
        first = np.asarray(labels[0])
        k = first.shape[0] if first.ndim == 3 else int(max(np.asarray(lb).max() for lb in labels)) + 1
        palette = default_palette(max(k, 2))
    grid = make_generation_grid(images, labels, palette, ncols=ncols, alpha=alpha, pad=pad)
    ext = osp.splitext(path)[1] or '.png'
    ok, buf = cv2.imencode(ext, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f'save_generation_grid: could not encode the grid as {ext}')
    return atomic_write_bytes(path, buf.tobytes())


def save_daug_grid(folder, names: Sequence[str], palette: Optional[Sequence[Sequence[int]]], path: str,
                   ncols: int = 4, alpha: float = 0.5) -> str:
    """:func:`save_generation_grid` of D_aug samples: each tile next to the argmax of its logits.

    Args:
        folder: The :class:`~projects.sar_oilspill.datasets.daug.DAugFolder` (its ``read_image`` /
            ``read_label`` read and check the files).
        names: Sample names, in grid order.
        palette, path, ncols, alpha: As for :func:`save_generation_grid`.
    """
    images = [folder.read_image(n) for n in names]
    labels = [folder.read_label(n) for n in names]
    return save_generation_grid(images, labels, palette, path, ncols=ncols, alpha=alpha)
