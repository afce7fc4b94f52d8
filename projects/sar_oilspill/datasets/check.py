"""Dataset checking: every problem a training run would trip over, found before the run starts."""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .label_codecs import LabelDecodeError, decode_label


def check_dataset(dataset, expect_size: Optional[Tuple[int, int]] = None, max_problems: int = 50) -> Dict:
    """Read every image/mask pair of an :class:`OilSpillBaseDataset` (built with ``check_files=False``).

    Reports images without masks, masks without images, unreadable files, image/mask size mismatches, sizes other
    than ``expect_size`` (H, W), label values or colours the dataset's format does not allow, and the pixel
    frequency of each class.

    Args:
        dataset: The dataset (its data infos are read directly; no pipeline is run).
        expect_size: Expected (H, W) of every image, or None to accept any.
        max_problems: Stop listing problems after this many (the count stays exact).

    Returns:
        dict with ``num_pairs``, ``problems`` (list of strings), ``num_problems``, ``class_pixels`` (class name ->
        count) and ``class_frequency`` (class name -> fraction of labelled pixels).
    """
    classes = dataset.metainfo['classes']
    counts = np.zeros(len(classes), np.int64)
    problems: List[str] = []
    n_problems = 0

    def report(msg: str) -> None:
        nonlocal n_problems
        n_problems += 1
        if len(problems) < max_problems:
            problems.append(msg)

    seen_masks = set()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img_path, seg_path = info['img_path'], info.get('seg_map_path')
        img = cv2.imread(img_path, cv2.IMREAD_UNCHANGED)
        if img is None:
            report(f'unreadable image: {img_path}')
        elif expect_size is not None and tuple(img.shape[:2]) != tuple(expect_size):
            report(f'wrong size: {img_path} is {img.shape[1]}x{img.shape[0]} (WxH), expected '
                   f'{expect_size[1]}x{expect_size[0]}')
        if seg_path is None:
            continue
        seen_masks.add(osp.abspath(seg_path))
        if not osp.isfile(seg_path):
            report(f'missing mask: {img_path} has no {seg_path}')
            continue
        raw = cv2.imread(seg_path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            report(f'unreadable mask: {seg_path}')
            continue
        if raw.ndim == 3:
            raw = raw[..., :3][..., ::-1]
        try:
            label = decode_label(raw, info['label_format'], seg_path, num_classes=len(classes),
                                 threshold=info.get('threshold', 128), palette=info.get('palette'))
        except LabelDecodeError as e:
            report(f'bad labels: {e}')
            continue
        if img is not None and label.shape != img.shape[:2]:
            report(f'size mismatch: {seg_path} is {label.shape[1]}x{label.shape[0]} but {img_path} is '
                   f'{img.shape[1]}x{img.shape[0]} (WxH)')
        counts += np.bincount(label.ravel(), minlength=256)[:len(classes)]

    seg_dir = dataset.data_prefix.get('seg_map_path')
    if seg_dir and osp.isdir(seg_dir):
        for name in sorted(os.listdir(seg_dir)):
            path = osp.abspath(osp.join(seg_dir, name))
            if name.endswith(dataset.seg_map_suffix) and path not in seen_masks:
                report(f'mask without image: {osp.join(seg_dir, name)}')
    total = max(int(counts.sum()), 1)
    return dict(num_pairs=len(dataset), problems=problems, num_problems=n_problems,
                class_pixels={c: int(n) for c, n in zip(classes, counts)},
                class_frequency={c: float(n) / total for c, n in zip(classes, counts)})
