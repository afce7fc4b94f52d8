"""Dataset checking: every problem a training run would trip over, found before the run starts."""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

from .image_io import ImageReadError, read_image, read_label
from .label_codecs import LabelDecodeError, binary_01_message, decode_label


def check_dataset(dataset, expect_size: Optional[Tuple[int, int]] = None, max_problems: int = 50) -> Dict:
    """Read every image/mask pair of an :class:`OilSpillBaseDataset` (built with ``check_files=False``).

    Reports an empty dataset, images without masks, masks without images, unreadable files (read with
    :func:`.image_io.read_image` / :func:`.image_io.read_label`, the readers of training, the balancing-factor
    tool and inference, so exactly the files they refuse: empty, truncated, undecodable), image/mask size
    mismatches, sizes other than ``expect_size`` (H, W), label values or colours the dataset's format does not
    allow, and the pixel frequency of each class. Warns (without counting a problem) about ``threshold`` (SOS)
    masks saved as 0/1, which would read as 0 % oil.

    Args:
        dataset: The dataset (its data infos are read directly; no pipeline is run).
        expect_size: Expected (H, W) of every image, or None to accept any.
        max_problems: Stop listing problems after this many (the count stays exact).

    Returns:
        dict with ``num_pairs``, ``problems`` (list of strings), ``num_problems``, ``warnings`` (list of strings),
        ``class_pixels`` (class name -> count) and ``class_frequency`` (class name -> fraction of labelled
        pixels).
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

    if len(dataset) == 0:
        report(f'no images ending in {getattr(dataset, "img_suffix", "")!r} under '
               f'{dataset.data_prefix.get("img_path")!r}')
    seen_masks = set()
    binary_01 = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img_path, seg_path = info['img_path'], info.get('seg_map_path')
        try:
            img = read_image(img_path)
        except ImageReadError as e:
            img = None
            report(str(e))
        if img is not None and expect_size is not None and tuple(img.shape[:2]) != tuple(expect_size):
            report(f'wrong size: {img_path} is {img.shape[1]}x{img.shape[0]} (WxH), expected '
                   f'{expect_size[1]}x{expect_size[0]}')
        if seg_path is None:
            continue
        seen_masks.add(osp.abspath(seg_path))
        if not osp.isfile(seg_path):
            report(f'missing mask: {img_path} has no {seg_path}')
            continue
        try:
            raw = read_label(seg_path)
        except ImageReadError as e:
            report(str(e))
            continue
        msg = (binary_01_message(raw, info.get('threshold', 128), seg_path)
               if info['label_format'] == 'threshold' else None)
        if msg:
            binary_01.append(msg)
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
    img_dir = dataset.data_prefix.get('img_path')
    if seg_dir and osp.isdir(seg_dir):
        # a mask is an orphan when its image file is missing (masks of samples outside a split or an ann_file list
        # are not: their images exist)
        for name in sorted(os.listdir(seg_dir)):
            path = osp.abspath(osp.join(seg_dir, name))
            if not name.endswith(dataset.seg_map_suffix) or path in seen_masks:
                continue
            stem = name[:-len(dataset.seg_map_suffix)] if dataset.seg_map_suffix else name
            if not img_dir or not osp.isfile(osp.join(img_dir, stem + dataset.img_suffix)):
                report(f'mask without image: {osp.join(seg_dir, name)}')
    warnings = []
    if binary_01:
        warnings.append(f'{len(binary_01)} of {len(dataset)} masks have maximum value 1 (saved as 0/1?); first: '
                        f'{binary_01[0]}')
    total = max(int(counts.sum()), 1)
    return dict(num_pairs=len(dataset), problems=problems, num_problems=n_problems, warnings=warnings,
                class_pixels={c: int(n) for c, n in zip(classes, counts)},
                class_frequency={c: float(n) / total for c, n in zip(classes, counts)})
