"""Quality measures for SAR-JointNet's generated set D_aug (generated SAR tiles + per-pixel label logits).

Three groups of measures:

* **Inception statistics** -- FID (Fréchet Inception Distance) between real and generated tiles and the
  Inception Score of the generated ones, with the TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid
  (``inception-2015-12-05.pt``). The weights cannot be downloaded here: the user passes the file
  (:class:`InceptionFeatureExtractor`).
* **Speckle statistics** that need no network: grey-level mean / std, equivalent number of looks (ENL),
  Jensen-Shannon and Wasserstein-1 distances between the pooled 8-bit histograms (:func:`speckle_statistics`).
* **Label-image consistency**: a segmenter trained on real data segments the generated tiles, and its
  prediction is scored against the argmax of the generated logits (:func:`label_image_consistency`). High mIoU
  means the generated labels describe what the generated image shows.
"""
import os
import os.path as osp
import warnings
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.linalg
from scipy.spatial.distance import jensenshannon
from scipy.special import xlogy
from scipy.stats import wasserstein_distance

from ..datasets.daug import DAugFolder
from .oilspill_metric import confusion_to_metrics

INCEPTION_FILE = 'inception-2015-12-05.pt'
INCEPTION_HINT = (
    f'FID / IS need the TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid ({INCEPTION_FILE}, 2048-d pool '
    'features, 1008 classes). Nothing is downloaded automatically (no download is possible here): obtain '
    f'{INCEPTION_FILE} (NVlabs stylegan2-ada-pytorch "pretrained/metrics" folder) on a machine with internet '
    'access, copy it here and pass its path (--inception PATH).')

ArrayLike = Union[np.ndarray, Sequence[np.ndarray]]


# ------------------------------------------------------------------------------------------------------------
# FID and IS
# ------------------------------------------------------------------------------------------------------------

def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2) (the FID formula).

    ``d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``, the matrix square root taken
    with :func:`scipy.linalg.sqrtm`. As pytorch-fid does, when the product is (numerically) singular and the
    square root is not finite, ``eps * I`` is added to both covariances; a small imaginary part left by
    round-off is dropped, a large one is an error.

    Args:
        mu1: (D,) mean of the first set of features.
        sigma1: (D, D) covariance of the first set.
        mu2: (D,) mean of the second set.
        sigma2: (D, D) covariance of the second set.
        eps: Diagonal offset used when the square root of the product is not finite.

    Returns:
        The squared Fréchet distance (what is reported as FID), >= 0 up to round-off.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f'frechet_distance: shapes do not match: mu {mu1.shape} / {mu2.shape}, '
                         f'sigma {sigma1.shape} / {sigma2.shape}')
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "matrix is singular" etc.: handled below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f'frechet_distance: sqrt(sigma1 @ sigma2) has an imaginary component '
                             f'of {np.max(np.abs(covmean.imag)):.3g}; the covariances are not valid')
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov``, ddof=1, as pytorch-fid) of (N, D) features; needs N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f'feature_statistics: need (N >= 2, D) features, got shape {features.shape}')
    return features.mean(axis=0), np.cov(features, rowvar=False)


def inception_score(probs: np.ndarray, splits: int = 10) -> Tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` of class probabilities, as in StyleGAN2-ADA.

    The N samples are cut into ``splits`` consecutive parts; each part gives one score with its own marginal
    ``p(y)``, and the mean and standard deviation of the scores are returned. ``0 log 0`` is taken as 0.

    Args:
        probs: (N, K) class probabilities (rows sum to 1).
        splits: Number of parts; must not exceed N.

    Returns:
        (mean, std) of the per-part scores. 1 for identical predictions, K for confident predictions spread
        evenly over K classes.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f'inception_score: need (N, K) probabilities, got shape {probs.shape}')
    if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError('inception_score: rows of probs must be non-negative and sum to 1')
    n = probs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f'inception_score: splits={splits} must be in [1, N={n}]')
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def _as_uint8_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 1/3) image -> (H, W, 3) uint8 (grey replicated into the three channels)."""
    img = np.asarray(img)
    if img.dtype != np.uint8:  # values are taken as 0..255 grey levels
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f'expected an (H, W) or (H, W, 3) image, got shape {img.shape}')
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img


class InceptionFeatureExtractor:
    """The TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid (``inception-2015-12-05.pt``), user-supplied.

    Call convention of that file (StyleGAN2-ADA ``metrics/metric_utils.py``,
    ``frechet_inception_distance.py``, ``inception_score.py``): the input is an NCHW tensor with **3 channels
    and values 0..255** (uint8); the model itself resizes it to 299x299 (bilinear ``grid_sample``) and
    normalises it with ``(x - 128) / 128``, so images are passed at their own size.
    ``model(x, return_features=True)`` returns the (N, 2048) pool features used by FID;
    ``model(x, no_output_bias=True)`` returns the (N, 1008) softmax class probabilities (without the output
    bias, as the original TensorFlow IS code) used by the Inception Score.

    Grey SAR tiles are replicated into three channels. Images are batched in runs of equal size (a batch never
    mixes sizes, so every image is processed the same way whatever its neighbours are).

    Args:
        path: The ``inception-2015-12-05.pt`` file. ``None`` or a missing file raises FileNotFoundError: it
            cannot be downloaded here.
        device: Torch device (``'cpu'``, ``'cuda'``, ``'cuda:1'``).
        batch_size: Images per forward pass.
    """

    def __init__(self, path: Optional[str], device: str = 'cpu', batch_size: int = 32) -> None:
        if not path:
            raise FileNotFoundError(f'no Inception weights given. {INCEPTION_HINT}')
        if not osp.isfile(path):
            raise FileNotFoundError(f'Inception weights {path!r} not found. {INCEPTION_HINT}')
        import torch
        try:
            self.model = torch.jit.load(path, map_location=device).eval()
        except Exception as e:  # a pickle / state dict instead of the TorchScript archive, a truncated file
            raise ValueError(f'{path!r} is not a loadable TorchScript model ({type(e).__name__}: {e}). '
                             f'{INCEPTION_HINT}') from e
        self.path = path
        self.device = device
        self.batch_size = int(batch_size)

    def _batches(self, images: Iterable[np.ndarray], batch_size: Optional[int]) -> Iterator:
        import torch
        bs = int(batch_size or self.batch_size)
        buf: List[np.ndarray] = []
        for img in images:
            img = _as_uint8_rgb(img)
            if buf and (len(buf) >= bs or buf[0].shape != img.shape):
                yield torch.from_numpy(np.stack(buf)).permute(0, 3, 1, 2).contiguous().to(self.device)
                buf = []
            buf.append(img)
        if buf:
            yield torch.from_numpy(np.stack(buf)).permute(0, 3, 1, 2).contiguous().to(self.device)

    def __call__(self, images: Iterable[np.ndarray], batch_size: Optional[int] = None,
                 features: bool = True, probs: bool = False) -> Dict[str, np.ndarray]:
        """Run the network over ``images``.

        Args:
            images: Iterable of uint8 (H, W) grey or (H, W, 3) RGB images.
            batch_size: Overrides the constructor's batch size.
            features: Return ``'features'``: (N, D) float64 pool features (D = 2048).
            probs: Return ``'probs'``: (N, K) float64 class probabilities (K = 1008). Outputs that are not
                already probabilities (negative values or rows not summing to 1) are passed through a softmax.

        Returns:
            dict with the requested arrays.
        """
        import torch
        feats, prob = [], []
        with torch.no_grad():
            for x in self._batches(images, batch_size):
                if features:
                    feats.append(self.model(x, return_features=True).double().cpu().numpy())
                if probs:
                    p = self.model(x, no_output_bias=True).double().cpu()
                    sums_to_one = torch.allclose(p.sum(1), torch.ones_like(p[:, 0]), atol=1e-3)
                    if bool((p < 0).any()) or not sums_to_one:
                        p = torch.softmax(p, dim=1)
                    prob.append(p.numpy())
        out = {}
        if features:
            out['features'] = np.concatenate(feats) if feats else np.zeros((0, 0))
        if probs:
            out['probs'] = np.concatenate(prob) if prob else np.zeros((0, 0))
        return out


def compute_fid_is(real_images: Iterable[np.ndarray], gen_images: Iterable[np.ndarray],
                   extractor: InceptionFeatureExtractor, batch_size: int = 32, splits: int = 10
                   ) -> Dict[str, float]:
    """FID between real and generated images and the Inception Score of the generated ones.

    Args:
        real_images: Iterable of uint8 real SAR tiles ((H, W) or (H, W, 3)).
        gen_images: Iterable of uint8 generated tiles.
        extractor: A loaded :class:`InceptionFeatureExtractor` (or any callable with its interface).
        batch_size: Images per forward pass.
        splits: IS splits (reduced to the number of generated images when there are fewer).

    Returns:
        ``dict(fid=..., is_mean=..., is_std=..., num_real=..., num_gen=...)``.
    """
    real = extractor(real_images, batch_size=batch_size, features=True)['features']
    gen = extractor(gen_images, batch_size=batch_size, features=True, probs=True)
    for name, f in (('real', real), ('generated', gen['features'])):
        if f.shape[0] < 2:
            raise ValueError(f'compute_fid_is: FID needs at least 2 {name} images, got {f.shape[0]}')
    fid = frechet_distance(*feature_statistics(real), *feature_statistics(gen['features']))
    is_mean, is_std = inception_score(gen['probs'], splits=min(splits, gen['probs'].shape[0]))
    return dict(fid=fid, is_mean=is_mean, is_std=is_std, num_real=int(real.shape[0]),
                num_gen=int(gen['features'].shape[0]))


# ------------------------------------------------------------------------------------------------------------
# Speckle statistics (offline)
# ------------------------------------------------------------------------------------------------------------

def to_gray(img: np.ndarray) -> np.ndarray:
    """(H, W) image unchanged; (H, W, 3) RGB -> luminance (exact for tiles saved with three equal channels)."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    if img.ndim == 3 and img.shape[2] == 3:
        if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
            return img[..., 0]
        import cv2
        return cv2.cvtColor(np.ascontiguousarray(img.astype(np.uint8)), cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise ValueError(f'expected an (H, W) or (H, W, 3) image, got shape {img.shape}')
    return img


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


# ------------------------------------------------------------------------------------------------------------
# Label-image consistency
# ------------------------------------------------------------------------------------------------------------

def label_image_consistency(segmentor_predict_fn: Callable[[np.ndarray], np.ndarray],
                            pairs: Iterable[Tuple[np.ndarray, np.ndarray]], num_classes: int,
                            class_names: Optional[Sequence[str]] = None) -> Dict:
    """Score a segmenter's prediction on generated images against the generated labels.

    For each (image, logits) pair, ``segmentor_predict_fn(image)`` gives an (H, W) class map; the reference is
    ``argmax`` over the K generated logits (or the label map itself when an (H, W) integer map is given).
    Pixel areas are accumulated over all pairs and turned into per-class IoU with the project's metric code
    (:func:`confusion_to_metrics`); classes absent from both prediction and reference (IoU NaN) are left out
    of the mean, as mmseg does.

    Args:
        segmentor_predict_fn: image -> (H, W) integer prediction.
        pairs: Iterable of (image, logits (K, H, W) or label (H, W)).
        num_classes: K.
        class_names: Names for the per-class entries (default ``'0'``, ``'1'``, ...).

    Returns:
        ``dict(mIoU, mF1, aAcc, IoU={name: value}, F1={name: value}, num_images, num_pixels)``,
        values in [0, 1] (not %); NaN for classes that never occur.
    """
    names = [str(k) for k in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise ValueError(f'label_image_consistency: {len(names)} class names for {num_classes} classes')
    areas = np.zeros((4, num_classes), np.float64)  # intersect, union, pred_area, label_area
    n = 0
    for image, target in pairs:
        target = np.asarray(target)
        if target.ndim == 3:
            if target.shape[0] != num_classes:
                raise ValueError(f'label_image_consistency: logits of shape {target.shape}, expected '
                                 f'({num_classes}, H, W)')
            label = target.astype(np.float32).argmax(axis=0)
        elif target.ndim == 2:
            label = target.astype(np.int64)
        else:
            raise ValueError(f'label_image_consistency: expected (K, H, W) logits or an (H, W) label, got '
                             f'{target.shape}')
        pred = np.asarray(segmentor_predict_fn(image)).astype(np.int64)
        if pred.shape != label.shape:
            raise ValueError(f'label_image_consistency: prediction {pred.shape} and label {label.shape} '
                             f'differ (image {np.shape(image)})')
        if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
            bad = np.unique(pred)[:10].tolist()
            raise ValueError(f'label_image_consistency: predicted classes {bad} are not all in '
                             f'0..{num_classes - 1}')
        if label.size and (label.min() < 0 or label.max() >= num_classes):
            raise ValueError(f'label_image_consistency: label values outside 0..{num_classes - 1}')
        conf = np.bincount(label.ravel() * num_classes + pred.ravel(), minlength=num_classes ** 2)
        conf = conf.reshape(num_classes, num_classes).astype(np.float64)  # rows: label, cols: prediction
        tp = np.diag(conf)
        label_area, pred_area = conf.sum(axis=1), conf.sum(axis=0)
        areas += np.stack([tp, label_area + pred_area - tp, pred_area, label_area])
        n += 1
    if n == 0:
        raise ValueError('label_image_consistency: no pairs given')
    m = confusion_to_metrics(*areas)

    def _mean(v: np.ndarray) -> float:
        return float(np.nanmean(v)) if not np.all(np.isnan(v)) else float('nan')

    return dict(mIoU=_mean(m['IoU']), mF1=_mean(m['F1']), aAcc=float(m['aAcc']),
                IoU={k: float(v) for k, v in zip(names, m['IoU'])},
                F1={k: float(v) for k, v in zip(names, m['F1'])},
                num_images=n, num_pixels=int(areas[3].sum()))


# ------------------------------------------------------------------------------------------------------------
# Reading D_aug and real tiles
# ------------------------------------------------------------------------------------------------------------

#: The D_aug layout in words (:attr:`DAugFolder.LAYOUT`).
DAUG_LAYOUT = DAugFolder.LAYOUT
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')


def read_image(path: str) -> np.ndarray:
    """Read an 8-bit tile: (H, W) grey, or (H, W, 3) RGB when the three channels differ (alpha is dropped).

    Decoded by the project's strict reader (:func:`..datasets.image_io.read_image`): an empty, truncated or
    undecodable file is an ``ImageReadError`` (an ``OSError``) naming it.
    """
    from ..datasets.image_io import read_image as _read_strict
    img = _read_strict(path, 'unchanged')
    if img.dtype != np.uint8:
        raise ValueError(f'{path}: {img.dtype} image; the generation measures expect 8-bit tiles')
    if img.ndim == 3:
        img = img[..., :3]
        if img.shape[2] == 1:
            return img[..., 0]
        if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
            return np.ascontiguousarray(img[..., 0])
        return np.ascontiguousarray(img[..., ::-1])
    return img


def load_daug(root: str, max_samples: Optional[int] = None) -> Tuple[Dict, List[Dict[str, str]]]:
    """List the samples of a D_aug folder (:meth:`DAugFolder.sample_names`, as :class:`DAugDataset` reads them).

    Args:
        root: D_aug folder.
        max_samples: Keep the first ``max_samples`` pairs in name order (all when ``None`` or larger).

    Returns:
        (manifest, samples): each sample is ``dict(name, img_path, logits_path)``; read them with
        :func:`read_daug_image` / :func:`read_daug_logits`.

    Raises:
        FileNotFoundError: naming ``root`` and the expected layout when it is not a D_aug folder.
    """
    folder = DAugFolder(root)
    folder.check_layout()
    manifest = folder.read_manifest()
    names = folder.sample_names(manifest)
    if max_samples is not None:
        names = names[:max_samples]
    samples = [dict(name=n, img_path=folder.image_path(n), logits_path=folder.logits_path(n)) for n in names]
    return manifest, samples


def list_real_images(root: str, real_type: str = 'auto', max_samples: Optional[int] = None) -> List[str]:
    """Image files of a real set, in name order.

    Args:
        root: The folder holding the tiles (searched recursively for ``sos`` / ``osd``), e.g.
            ``data/sos/train/palsar``, ``data/sos/test/palsar/sat`` or ``data/osd/train/images``.
        real_type: ``'sos'`` (``*_sat.jpg`` via :class:`SOSDataset`), ``'osd'`` (``*.jpg`` via
            :class:`OSDDataset`), ``'folder'`` (every image file directly in ``root``) or ``'auto'`` (``sos``
            when ``*_sat.jpg`` files exist, else ``folder``).
        max_samples: Keep the first ``max_samples`` files.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'real image folder {root!r} does not exist')
    if real_type == 'auto':
        found = any(f.endswith('_sat.jpg') for _, _, files in os.walk(root) for f in files)
        real_type = 'sos' if found else 'folder'
    if real_type in ('sos', 'osd'):
        from ..datasets import OSDDataset, SOSDataset
        cls = SOSDataset if real_type == 'sos' else OSDDataset
        ds = cls(data_prefix=dict(img_path=osp.abspath(root), seg_map_path=osp.abspath(root)), pipeline=[],
                 check_files=False, lazy_init=True)
        paths = sorted(d['img_path'] for d in ds.load_data_list())
    elif real_type == 'folder':
        paths = sorted(osp.join(root, f) for f in os.listdir(root)
                       if f.lower().endswith(IMAGE_EXTENSIONS) and osp.isfile(osp.join(root, f)))
    else:
        raise ValueError(f"real_type={real_type!r}, expected 'sos', 'osd', 'folder' or 'auto'")
    if not paths:
        raise FileNotFoundError(f'no {real_type} images under {root!r}')
    return paths[:max_samples] if max_samples is not None else paths
