"""Loading of oil-spill images and label maps through the project's one strict reader (:mod:`..image_io`)."""
import os.path as osp
import warnings
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..image_io import ImageReadError, read_image, read_label
from ..label_codecs import binary_01_message, decode_label

#: Mask folders already warned about 0/1 masks (one warning per dataset folder and process).
_WARNED_01_DIRS = set()


@TRANSFORMS.register_module()
class LoadOilSpillImage(BaseTransform):
    """Read ``results['img_path']`` with :func:`~projects.sar_oilspill.datasets.image_io.read_image`.

    A drop-in replacement of mmcv's ``LoadImageFromFile`` (same arguments and the same array for a good file) that
    refuses empty, truncated and undecodable files with an :class:`ImageReadError` naming the file, as the dataset
    checker, the balancing-factor tool and inference do.

    Required keys: ``img_path``. Added keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        to_float32: Convert the image to float32.
        color_type: ``'color'`` (default, 3-channel BGR), ``'grayscale'`` or ``'unchanged'`` (see ``read_image``).
        imdecode_backend: Only ``'cv2'`` (the decoder of ``read_image``).
        ignore_empty: Return None (skip the sample) instead of raising on a bad file, as in mmcv.
        backend_args: mmengine file backend arguments.
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color', imdecode_backend: str = 'cv2',
                 ignore_empty: bool = False, *, backend_args: Optional[dict] = None) -> None:
        if imdecode_backend != 'cv2':
            raise ValueError(f'LoadOilSpillImage: imdecode_backend={imdecode_backend!r}; only "cv2" is supported '
                             '(every tool of this project decodes with OpenCV)')
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.ignore_empty = ignore_empty
        self.backend_args = None if backend_args is None else dict(backend_args)

    def transform(self, results: Dict) -> Optional[Dict]:
        try:
            img = read_image(results['img_path'], self.color_type, backend_args=self.backend_args)
        except ImageReadError:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(to_float32={self.to_float32}, color_type={self.color_type!r}, '
                f'ignore_empty={self.ignore_empty}, backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadOilSpillAnnotations(BaseTransform):
    """Read ``results['seg_map_path']`` and decode it with the dataset's label format.

    The dataset (:class:`OilSpillBaseDataset`) puts ``label_format``, ``num_classes``, ``threshold`` and
    ``palette`` into every data_info. The file is read by
    :func:`~projects.sar_oilspill.datasets.image_io.read_label` (an unreadable one is an :class:`ImageReadError`
    naming it). The decoded map must have the image's size: a mismatch is an error that names both files, so a
    broken pair is found at the first epoch and not silently resized. A ``threshold`` (SOS) mask whose maximum is 1
    (saved as 0/1 instead of 0/255, which would read as all background) is warned about once per mask folder.

    Required keys: ``seg_map_path``, ``label_format``, ``img_shape`` (if the image was loaded first).
    Added keys: ``gt_seg_map`` (H, W) uint8, ``seg_fields``.

    Args:
        check_size: Compare the mask size with ``results['ori_shape']`` when the image was already loaded.
    """

    def __init__(self, check_size: bool = True) -> None:
        self.check_size = check_size

    def transform(self, results: Dict) -> Dict:
        path = results['seg_map_path']
        raw = read_label(path)
        fmt = results.get('label_format', 'index')
        threshold = results.get('threshold', 128)
        if fmt == 'threshold' and osp.dirname(osp.abspath(path)) not in _WARNED_01_DIRS:
            msg = binary_01_message(raw, threshold, path)
            if msg:
                _WARNED_01_DIRS.add(osp.dirname(osp.abspath(path)))
                warnings.warn(msg + ' (warned once for this folder)', UserWarning, stacklevel=2)
        label = decode_label(raw, fmt, path, num_classes=results.get('num_classes', 2),
                             threshold=threshold, palette=results.get('palette'))
        if self.check_size and 'ori_shape' in results and tuple(label.shape) != tuple(results['ori_shape'][:2]):
            raise ValueError(f'{path}: label map is {label.shape[1]}x{label.shape[0]} (WxH) but its image '
                             f'{results.get("img_path")} is {results["ori_shape"][1]}x{results["ori_shape"][0]}')
        results['gt_seg_map'] = np.ascontiguousarray(label)
        results.setdefault('seg_fields', []).append('gt_seg_map')
        results['reduce_zero_label'] = False
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(check_size={self.check_size})'
