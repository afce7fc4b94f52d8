"""The tile sets the generation measures read: a D_aug folder's samples and a folder of real tiles."""
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..datasets.daug import DAugFolder
from ..visualization.image_utils import channels_equal

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
        if channels_equal(img):
            return np.ascontiguousarray(img[..., 0])
        return np.ascontiguousarray(img[..., ::-1])
    return img


def load_daug(root: str, max_samples: Optional[int] = None) -> Tuple[Dict, List[Dict[str, str]]]:
    """List the samples of a D_aug folder (:meth:`DAugFolder.sample_names`, as :class:`DAugDataset` reads them).

    Args:
        root: D_aug folder.
        max_samples: Keep the first ``max_samples`` pairs in name order (all when ``None`` or larger).

    Returns:
        (manifest, samples): each sample is ``dict(name, img_path, logits_path, valid_path)``; read them with
        :func:`read_daug_image` / :func:`read_daug_logits` / :func:`read_daug_valid`. ``valid_path`` (the label
        mask, non-zero where the pixel carries a label) is ``None`` unless the manifest says ``label_mask``.

    Raises:
        FileNotFoundError: naming ``root`` and the expected layout when it is not a D_aug folder.
    """
    folder = DAugFolder(root)
    folder.check_layout()
    manifest = folder.read_manifest()
    names = folder.sample_names(manifest)
    if max_samples is not None:
        names = names[:max_samples]
    masked = folder.has_label_mask(manifest)
    samples = [dict(name=n, img_path=folder.image_path(n), logits_path=folder.logits_path(n),
                    valid_path=folder.valid_path(n) if masked else None) for n in names]
    return manifest, samples


def _resolve_real_type(root: str, real_type: str) -> str:
    """``'auto'`` -> ``'sos'`` when ``*_sat.jpg`` files exist under ``root``, else ``'folder'``."""
    if real_type != 'auto':
        return real_type
    found = any(f.endswith('_sat.jpg') for _, _, files in os.walk(root) for f in files)
    return 'sos' if found else 'folder'


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
    real_type = _resolve_real_type(root, real_type)
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


def real_label_maps(root: str, real_type: str, img_paths: List[str]) -> Optional[Iterator[np.ndarray]]:
    """The label maps of real tiles listed by :func:`list_real_images`, decoded as the dataset decodes them
    (``LoadOilSpillAnnotations``: SOS threshold masks, OSD index or palette masks). The labels are looked for where
    the datasets keep them: SOS ``<id>_mask.png`` beside ``<id>_sat.jpg`` (training layout) or in the ``gt`` folder
    beside ``sat`` (test layout); OSD in ``labels_1D`` (or ``labels``) beside ``images``. ``None`` for a plain
    folder of images, or where a tile's label file does not exist. ``real_type`` is resolved as in
    :func:`list_real_images`."""
    root = osp.abspath(root)
    real_type = _resolve_real_type(root, real_type)
    if real_type not in ('sos', 'osd'):
        return None
    from ..datasets import OSDDataset, SOSDataset
    from ..datasets.transforms import LoadOilSpillAnnotations
    parent, name = osp.split(root)
    if real_type == 'sos':
        cls, seg_root = SOSDataset, osp.join(parent, 'gt') if name == 'sat' else root
    else:
        cls, seg_root = OSDDataset, osp.join(parent, 'labels_1D') if name == 'images' else root
    ds = cls(data_prefix=dict(img_path=root, seg_map_path=seg_root), pipeline=[], check_files=False,
             lazy_init=True)
    by_path = {d['img_path']: d for d in ds.load_data_list()}
    entries = [by_path[osp.abspath(p)] for p in img_paths]
    load = LoadOilSpillAnnotations(check_size=False)
    if not all(osp.isfile(e['seg_map_path']) for e in entries):
        return None
    return (load(dict(e))['gt_seg_map'] for e in entries)  # one at a time: OSD label maps are large


def class_shares(label_maps, num_classes: int, ignore_index: int = 255) -> List[float]:
    """Share of each class among the labelled pixels of ``label_maps`` (an iterable of (H, W) class maps; pixels
    equal to ``ignore_index`` are left out)."""
    counts = np.zeros(num_classes, np.int64)
    for label in label_maps:
        label = np.asarray(label)
        label = label[label != ignore_index]
        if label.size and (label.min() < 0 or label.max() >= num_classes):
            raise ValueError(f'class_shares: class index {int(label.max())} outside 0..{num_classes - 1}')
        counts += np.bincount(label.ravel().astype(np.int64), minlength=num_classes)
    total = counts.sum()
    return (counts / total).tolist() if total else [float('nan')] * num_classes
