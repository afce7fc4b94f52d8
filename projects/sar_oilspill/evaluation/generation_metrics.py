"""Quality measures for SAR-JointNet's generated set D_aug (generated SAR tiles + per-pixel label logits).

The measures live in one module per concern; this module gathers their public names:

* :mod:`.fid` -- FID (Fréchet Inception Distance) between real and generated tiles and the Inception Score of the
  generated ones, with the user-supplied TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid.
* :mod:`.speckle_stats` -- speckle statistics that need no network: grey-level mean / std, equivalent number of
  looks (ENL), Jensen-Shannon and Wasserstein-1 distances between the pooled 8-bit histograms.
* :mod:`.label_consistency` -- a segmenter trained on real data segments the generated tiles, and its prediction
  is scored against the argmax of the generated logits.
* :mod:`.image_sets` -- reading the tile sets: a D_aug folder's samples, a folder of real tiles.
"""
from .fid import (INCEPTION_FILE, INCEPTION_HINT, InceptionFeatureExtractor, compute_fid_is, feature_statistics,
                  frechet_distance, inception_score)
from .image_sets import IMAGE_EXTENSIONS, list_real_images, load_daug, read_image
from .label_consistency import label_image_consistency
from .speckle_stats import equivalent_number_of_looks, gray_histogram, histogram_distance, speckle_statistics
from ..visualization.image_utils import to_gray

__all__ = [
    'INCEPTION_FILE', 'INCEPTION_HINT', 'InceptionFeatureExtractor', 'compute_fid_is', 'feature_statistics',
    'frechet_distance', 'inception_score', 'IMAGE_EXTENSIONS', 'list_real_images', 'load_daug', 'read_image',
    'label_image_consistency', 'equivalent_number_of_looks', 'gray_histogram', 'histogram_distance',
    'speckle_statistics', 'to_gray'
]
