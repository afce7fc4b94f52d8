"""Shared behaviour of the oil-spill datasets: file checks before training and label-format metadata."""
import os.path as osp
from typing import List, Optional

import cv2
from mmseg.datasets import BaseSegDataset

from .image_io import ImageReadError
from .label_codecs import LABEL_FORMATS
from .val_split import check_split, sample_id, split_ids, train_subset


class OilSpillBaseDataset(BaseSegDataset):
    """BaseSegDataset that checks its files up front and tells the loader how to decode labels.

    Every data_info gets ``label_format`` (see :mod:`.label_codecs`), ``num_classes``, ``threshold`` and
    ``palette`` so that :class:`LoadOilSpillAnnotations` decodes the mask the way this dataset stores it.

    Args:
        label_format: ``'threshold'``, ``'index'`` or ``'palette'``.
        threshold: Grey level from which a ``threshold`` mask pixel counts as class 1.
        check_files: Raise before training if the data root, image folder or any mask is missing.
        split: ``None`` (all samples) or ``dict(part='train'|'val', fraction=0.1, seed=0)``: keep only that part
            of a deterministic train/val split of the listed samples (:mod:`.val_split`; the same ids on every
            machine, the two parts disjoint and together the whole list). ``split_info`` then records the part
            and the sizes. ``train_size=N`` (part 'train' only) keeps N samples of the training part, a
            labelled-data budget (:func:`.val_split.train_subset`).
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`.
    """

    def __init__(self, label_format: str = 'index', threshold: int = 128, check_files: bool = True,
                 split: Optional[dict] = None, **kwargs) -> None:
        if label_format not in LABEL_FORMATS:
            raise ValueError(f'label_format={label_format!r}; expected one of {LABEL_FORMATS}')
        self.label_format = label_format
        self.threshold = threshold
        self.check_files = check_files
        self.split = check_split(split)
        self.split_info: Optional[dict] = None
        kwargs.setdefault('reduce_zero_label', False)
        if kwargs['reduce_zero_label']:
            raise ValueError(f'{type(self).__name__}: reduce_zero_label=True would turn class 0 (sea/background) '
                             'into the ignore index; these datasets label every pixel')
        super().__init__(**kwargs)

    def _check_dirs(self) -> None:
        img_dir = self.data_prefix.get('img_path', '')
        if self.data_root and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'{type(self).__name__}: data_root {self.data_root!r} does not exist. Point the config at your copy '
                f'(e.g. --cfg-options train_dataloader.dataset.data_root=PATH) or link it under data/; the README '
                'shows the expected layout.')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'{type(self).__name__}: image folder {img_dir!r} does not exist')

    def load_data_list(self) -> List[dict]:
        if self.check_files and not self.ann_file:
            self._check_dirs()
        data_list = super().load_data_list()
        if not data_list:  # also with check_files=False: an empty set cannot be built (nor trained or checked)
            raise FileNotFoundError(
                f'{type(self).__name__}: no images ending in {self.img_suffix!r} under '
                f'{self.data_prefix.get("img_path")!r}' + (f' (annotation file {self.ann_file!r})'
                                                           if self.ann_file else ''))
        if self.split is not None:
            data_list = self._select_split(data_list)
        missing = [d['seg_map_path'] for d in data_list
                   if d.get('seg_map_path') is not None and not osp.isfile(d['seg_map_path'])]
        if self.check_files and missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} of {len(data_list)} images have no mask '
                f'(expected <name>{self.seg_map_suffix}); first missing: {missing[:5]}')
        extra = dict(label_format=self.label_format, threshold=self.threshold,
                     num_classes=len(self.metainfo['classes']), palette=self.metainfo.get('palette'))
        for info in data_list:
            info.update(extra)
        return data_list

    def _select_split(self, data_list: List[dict]) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        ids = [sample_id(d['img_path'], img_dir, self.img_suffix) for d in data_list]
        try:
            train, val = split_ids(ids, self.split['fraction'], self.split['seed'])
            num_train_part = len(train)
            if self.split.get('train_size') is not None:
                train = train_subset(train, self.split['train_size'], self.split['seed'])
        except ValueError as e:
            raise ValueError(f'{type(self).__name__}: split={self.split} of {img_dir!r}: {e}') from e
        keep = set(train if self.split['part'] == 'train' else val)
        self.split_info = dict(self.split, num_total=len(ids), num_train=len(train), num_val=len(val))
        if len(train) != num_train_part:
            self.split_info['num_train_part'] = num_train_part
        return [d for d, i in zip(data_list, ids) if i in keep]

    def prepare_data(self, idx: int):
        """Run the pipeline on sample ``idx``; an image that cannot be decoded is an OSError naming the file.

        The project's configs load images with :class:`LoadOilSpillImage`, which raises
        :class:`ImageReadError` naming the file itself. mmcv's ``LoadImageFromFile`` (still accepted) only asserts
        on an undecodable image (the assert vanishes under ``python -O``) and raises a bare ``cv2.error`` on an
        empty file; both become the same error here, saying which file and what was expected.
        """
        try:
            return super().prepare_data(idx)
        except (AssertionError, cv2.error) as e:
            if isinstance(e, AssertionError) and not str(e).startswith('failed to load image'):
                raise
            path = self.get_data_info(idx).get('img_path')
            raise ImageReadError(f'{type(self).__name__}: {path}: unreadable image (empty, truncated or not an '
                                 f'image file); expected an {self.img_suffix} image readable by OpenCV. '
                                 'tools/dataset_tools/check_dataset.py lists every such file.') from e
