"""Speckle statistics of a real and a generated tile set, without any network.

Grey-level mean / std, equivalent number of looks (ENL), and the Jensen-Shannon and Wasserstein-1 distances between
the pooled 8-bit histograms (:func:`speckle_statistics`).
"""
from typing import Dict, Iterable, List, Optional, Union

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from ..visualization.image_utils import to_gray


def _enl(x: np.ndarray, ddof: int = 0) -> np.ndarray:
    """mean^2 / var along the last axis (NaN where the variance is 0)."""
    mean = x.mean(axis=-1)
    var = x.var(axis=-1, ddof=ddof)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(var > 0, mean ** 2 / np.where(var > 0, var, 1.0), np.nan)


def equivalent_number_of_looks(img: np.ndarray, window: Optional[int] = None, kind: str = 'amplitude',
                               homogeneous_fraction: float = 1.0) -> float:
    """Equivalent number of looks ``ENL = E[I]^2 / Var[I]`` of the intensity ``I``.

    Convention: the pixel values are taken as SAR **amplitude** by default (``kind='amplitude'``), so the
    intensity is ``I = value^2``; with ``kind='intensity'`` the values are used as they are. For fully
    developed L-look speckle on a homogeneous area the ENL is L (1 for single-look exponential intensity).
    Tiles stored in dB (log scale) have no meaningful ENL; the number is then only useful to compare two sets
    stored the same way.

    * ``window=None``: one ENL over the whole image (scene texture, slicks and land lower it).
    * ``window=w``: the image is cut into non-overlapping ``w x w`` windows (the incomplete border is
      dropped), each window gets its own ENL (unbiased variance), and the mean over the most homogeneous
      windows is returned: the ``homogeneous_fraction`` of windows with the highest ENL (lowest coefficient of
      variation). ``homogeneous_fraction=1`` averages all windows (unbiased on pure speckle); smaller values
      follow the usual practice of measuring on homogeneous sea areas only, and overestimate the ENL of pure
      speckle. Constant windows (zero variance) are skipped.

    Args:
        img: (H, W) or (H, W, 3) image (any numeric type).
        window: Window size in pixels or ``None``.
        kind: ``'amplitude'`` or ``'intensity'``.
        homogeneous_fraction: Fraction of windows kept, in (0, 1].

    Returns:
        The ENL, or NaN for a constant image.
    """
    if kind not in ('amplitude', 'intensity'):
        raise ValueError(f"equivalent_number_of_looks: kind={kind!r}, expected 'amplitude' or 'intensity'")
    if not 0 < homogeneous_fraction <= 1:
        raise ValueError(f'equivalent_number_of_looks: homogeneous_fraction={homogeneous_fraction} is not in '
                         '(0, 1]')
    x = to_gray(img).astype(np.float64)
    if kind == 'amplitude':
        x = x ** 2
    if window is None:
        return float(_enl(x.reshape(-1)))
    h, w = x.shape
    if window < 2 or window > min(h, w):
        raise ValueError(f'equivalent_number_of_looks: window={window} must be in [2, {min(h, w)}]')
    nh, nw = h // window, w // window
    blocks = x[:nh * window, :nw * window].reshape(nh, window, nw, window).transpose(0, 2, 1, 3)
    enl = _enl(blocks.reshape(nh * nw, window * window), ddof=1)
    enl = np.sort(enl[np.isfinite(enl)])[::-1]
    if enl.size == 0:
        return float('nan')
    keep = max(1, int(round(homogeneous_fraction * enl.size)))
    return float(enl[:keep].mean())


def gray_histogram(images: Union[np.ndarray, Iterable[np.ndarray]], bins: int = 256) -> np.ndarray:
    """Pooled histogram (counts, float64) of the 8-bit grey levels of one image or an iterable of images."""
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    hist = np.zeros(bins, np.float64)
    for img in images:
        hist += np.histogram(to_gray(img), bins=bins, range=(0, 256))[0]
    return hist


def _histogram_distances(h1: np.ndarray, h2: np.ndarray) -> Dict[str, float]:
    if h1.sum() == 0 or h2.sum() == 0:
        raise ValueError('histogram_distance: one of the sets has no pixels')
    p, q = h1 / h1.sum(), h2 / h2.sum()
    centres = (np.arange(len(h1)) + 0.5) * 256.0 / len(h1)
    return dict(js=float(jensenshannon(p, q, base=2)),
                w1=float(wasserstein_distance(centres, centres, u_weights=p, v_weights=q)))


def histogram_distance(real: Union[np.ndarray, Iterable[np.ndarray]],
                       gen: Union[np.ndarray, Iterable[np.ndarray]], bins: int = 256) -> Dict[str, float]:
    """Distances between the pooled 8-bit grey-level histograms of two image sets.

    Args:
        real: One (H, W) image or an iterable of images (grey or RGB, values 0..255).
        gen: Same for the generated set.
        bins: Histogram bins over [0, 256).

    Returns:
        ``js``: Jensen-Shannon distance (square root of the JS divergence, base 2, so in [0, 1]);
        ``w1``: Wasserstein-1 (earth mover's) distance between the two grey-level distributions, in grey
        levels (:func:`scipy.stats.wasserstein_distance` on the bin centres weighted by the histograms).
        Both are 0 for identical histograms.
    """
    return _histogram_distances(gray_histogram(real, bins), gray_histogram(gen, bins))


class _SetStats:
    """Streaming grey-level moments, ENL and histogram of one image set."""

    def __init__(self, bins: int, enl_kwargs: Dict) -> None:
        self.hist = np.zeros(bins, np.float64)
        self.bins = bins
        self.enl_kwargs = enl_kwargs
        self.n = 0
        self.pixels = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.enls: List[float] = []

    def add(self, img: np.ndarray) -> None:
        g = to_gray(img)
        x = g.astype(np.float64)
        self.n += 1
        self.pixels += x.size
        self.total += float(x.sum())
        self.total_sq += float((x ** 2).sum())
        self.hist += np.histogram(g, bins=self.bins, range=(0, 256))[0]
        kwargs = dict(self.enl_kwargs)
        if kwargs.get('window') is not None and kwargs['window'] > min(g.shape):
            kwargs['window'] = None
        self.enls.append(equivalent_number_of_looks(g, **kwargs))

    def summary(self) -> Dict[str, float]:
        mean = self.total / max(self.pixels, 1)
        var = max(self.total_sq / max(self.pixels, 1) - mean ** 2, 0.0)
        enl = np.asarray(self.enls, np.float64)
        finite = enl[np.isfinite(enl)]
        return dict(num_images=self.n, mean=mean, std=float(np.sqrt(var)),
                    enl_mean=float(finite.mean()) if finite.size else float('nan'),
                    enl_median=float(np.median(finite)) if finite.size else float('nan'))


def speckle_statistics(real_iter: Iterable[np.ndarray], gen_iter: Iterable[np.ndarray], bins: int = 256,
                       enl_window: Optional[int] = 16, enl_kind: str = 'amplitude',
                       enl_homogeneous_fraction: float = 0.5) -> Dict[str, Dict[str, float]]:
    """Speckle / radiometry summary of a real and a generated set (one pass over each iterable).

    Args:
        real_iter: Iterable of real uint8 tiles ((H, W) or (H, W, 3)).
        gen_iter: Iterable of generated uint8 tiles.
        bins: Histogram bins.
        enl_window, enl_kind, enl_homogeneous_fraction: Passed to :func:`equivalent_number_of_looks` for every
            image (an image smaller than the window gets the whole-image ENL).

    Returns:
        ``dict(real=..., gen=..., distance=...)``: ``real`` and ``gen`` hold ``num_images``, ``mean`` and
        ``std`` of the pooled grey levels and ``enl_mean`` / ``enl_median`` over images; ``distance`` holds
        ``js`` and ``w1`` between the pooled histograms (:func:`histogram_distance`) and ``enl_ratio`` (gen /
        real mean ENL).
    """
    enl_kwargs = dict(window=enl_window, kind=enl_kind, homogeneous_fraction=enl_homogeneous_fraction)
    stats = {}
    for name, images in (('real', real_iter), ('gen', gen_iter)):
        s = _SetStats(bins, enl_kwargs)
        for img in images:
            s.add(img)
        if s.n == 0:
            raise ValueError(f'speckle_statistics: the {name} set is empty')
        stats[name] = s
    distance = _histogram_distances(stats['real'].hist, stats['gen'].hist)
    out = {name: s.summary() for name, s in stats.items()}
    with np.errstate(divide='ignore', invalid='ignore'):
        distance['enl_ratio'] = float(np.float64(out['gen']['enl_mean']) / out['real']['enl_mean'])
    out['distance'] = distance
    return out
