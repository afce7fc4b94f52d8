"""Loading of oil-spill label maps in their on-disk formats."""
from typing import Dict

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..label_codecs import decode_label


@TRANSFORMS.register_module()
class LoadOilSpillAnnotations(BaseTransform):
    """Read ``results['seg_map_path']`` and decode it with the dataset's label format.

    The dataset (:class:`OilSpillBaseDataset`) puts ``label_format``, ``num_classes``, ``threshold`` and
    ``palette`` into every data_info. The decoded map must have the image's size: a mismatch is an error that
    names both files, so a broken pair is found at the first epoch and not silently resized.

    Required keys: ``seg_map_path``, ``label_format``, ``img_shape`` (if the image was loaded first).
    Added keys: ``gt_seg_map`` (H, W) uint8, ``seg_fields``.

    Args:
        check_size: Compare the mask size with ``results['ori_shape']`` when the image was already loaded.
    """

    def __init__(self, check_size: bool = True) -> None:
        self.check_size = check_size

    def transform(self, results: Dict) -> Dict:
        path = results['seg_map_path']
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise OSError(f'{path}: unreadable label map (missing, truncated or not an image)')
        fmt = results.get('label_format', 'index')
        if raw.ndim == 3:
            raw = raw[..., :3][..., ::-1]  # BGR(A) -> RGB
        label = decode_label(raw, fmt, path, num_classes=results.get('num_classes', 2),
                             threshold=results.get('threshold', 128), palette=results.get('palette'))
        if self.check_size and 'ori_shape' in results and tuple(label.shape) != tuple(results['ori_shape'][:2]):
            raise ValueError(f'{path}: label map is {label.shape[1]}x{label.shape[0]} (WxH) but its image '
                             f'{results.get("img_path")} is {results["ori_shape"][1]}x{results["ori_shape"][0]}')
        results['gt_seg_map'] = np.ascontiguousarray(label)
        results.setdefault('seg_fields', []).append('gt_seg_map')
        results['reduce_zero_label'] = False
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(check_size={self.check_size})'
