"""FID (Fréchet Inception Distance) and Inception Score of generated SAR tiles.

Computed with the TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid (``inception-2015-12-05.pt``). The weights
cannot be downloaded here: the user passes the file (:class:`InceptionFeatureExtractor`).
"""
import os.path as osp
import warnings
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import scipy.linalg
import torch
from scipy.special import xlogy

from ..visualization.image_utils import as_uint8_rgb

INCEPTION_FILE = 'inception-2015-12-05.pt'
INCEPTION_HINT = (
    f'FID / IS need the TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid ({INCEPTION_FILE}, 2048-d pool '
    'features, 1008 classes). Nothing is downloaded automatically (no download is possible here): obtain '
    f'{INCEPTION_FILE} (NVlabs stylegan2-ada-pytorch "pretrained/metrics" folder) on a machine with internet '
    'access, copy it here and pass its path (--inception PATH).')

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
        try:
            self.model = torch.jit.load(path, map_location=device).eval()
        except Exception as e:  # a pickle / state dict instead of the TorchScript archive, a truncated file
            raise ValueError(f'{path!r} is not a loadable TorchScript model ({type(e).__name__}: {e}). '
                             f'{INCEPTION_HINT}') from e
        self.path = path
        self.device = device
        self.batch_size = int(batch_size)

    def _batches(self, images: Iterable[np.ndarray], batch_size: Optional[int]) -> Iterator:
        bs = int(batch_size or self.batch_size)
        buf: List[np.ndarray] = []
        for img in images:
            img = as_uint8_rgb(img)
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
