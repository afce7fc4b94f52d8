"""mmcv geometric transforms that move every seg field, for pipelines that carry soft labels.

mmseg's own ``RandomCrop``, ``RandomFlip``, ``Resize`` (and ``RandomResize`` / ``RandomChoiceResize`` /
``ResizeShortestEdge``, which build it), ``RandomRotate``, ``RandomRotFlip``, ``ResizeToMultiple`` and
``RandomCutOut`` move every key listed in ``results['seg_fields']``, including the (H, W, K + 1) float soft labels
of ``LoadSoftLabels`` (checked by ``tests/test_datasets/test_soft_label_transforms.py``). Two mmcv transforms that
mmseg configs use only move ``gt_seg_map``: ``Pad`` and ``CenterCrop``; the two below are the same transforms for
every seg field. mmseg's ``RandomMosaic`` builds 2-D label canvases and cannot hold multi-channel fields; use
``SoftLabelMosaic``.

``RareClassCrop`` is mmseg's ``RandomCrop`` with nnU-Net's foreground oversampling: a share of the crops is placed
on a pixel of a rare class, so that objects of a few pixels (ships) are seen in training often enough to be learnt.
"""
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import CenterCrop, Pad
from mmcv.transforms.utils import cache_randomness
from mmseg.datasets.transforms import RandomCrop
from mmseg.registry import TRANSFORMS

_NP_PAD_MODES = dict(constant='constant', edge='edge', reflect='reflect', symmetric='symmetric')


@TRANSFORMS.register_module()
class PadSegFields(Pad):
    """mmcv's ``Pad`` that pads every seg field (2-D label maps and (H, W, C) maps such as soft labels).

    Same arguments as ``Pad``. Each field is padded at the bottom/right to ``results['pad_shape']`` with
    ``pad_val['seg']`` (default 255) in every channel, or with ``padding_mode``; on soft labels the fill value marks
    the padding as unlabelled (their validity channel is not 1).
    """

    def _pad_seg(self, results: dict) -> None:
        pad_val = self.pad_val.get('seg', 255)
        h, w = results['pad_shape'][:2]
        for key in results.get('seg_fields', []):
            seg = results.get(key)
            if seg is None:
                continue
            if seg.ndim == 2:
                results[key] = mmcv.impad(seg, shape=(h, w), pad_val=pad_val, padding_mode=self.padding_mode)
                continue
            widths = ((0, max(h - seg.shape[0], 0)), (0, max(w - seg.shape[1], 0))) + ((0, 0), ) * (seg.ndim - 2)
            mode = _NP_PAD_MODES[self.padding_mode]
            kwargs = dict(constant_values=pad_val) if mode == 'constant' else {}
            results[key] = np.pad(seg, widths, mode=mode, **kwargs)


@TRANSFORMS.register_module()
class CenterCropSegFields(CenterCrop):
    """mmcv's ``CenterCrop`` that crops every seg field; ``auto_pad`` pads with :class:`PadSegFields`."""

    def __init__(self, *args, pad_cfg: dict = dict(type='PadSegFields'), **kwargs) -> None:
        super().__init__(*args, pad_cfg=pad_cfg, **kwargs)

    def _crop_seg_map(self, results: dict, bboxes: np.ndarray) -> None:
        for key in results.get('seg_fields', []):
            if results.get(key) is not None:
                results[key] = mmcv.imcrop(results[key], bboxes=bboxes)


@TRANSFORMS.register_module()
class RareClassCrop(RandomCrop):
    """mmseg's ``RandomCrop`` that centres a share of its crops on rare classes (nnU-Net's foreground oversampling).

    With probability ``prob``, and when the label map holds one of ``classes``, the crop is placed to contain a
    pixel drawn as follows: one of the listed classes present in the map, each with the same chance, then one of
    its pixels uniformly; the crop's position is uniform among the positions that hold that pixel (so the object is
    not always in the centre). Otherwise (and always for a map without those classes) the crop is ``RandomCrop``'s,
    ``cat_max_ratio`` included. Like ``RandomCrop`` it moves every seg field (soft labels too).

    Isensee et al., nnU-Net (Nature Methods 2021), force a third of the patches to contain foreground; this is that
    rule for a few classes of a multi-class map. It changes which crops are seen, not the loss.

    Args:
        crop_size: (h, w) or an int.
        classes: Label ids to oversample, e.g. ``(3, )`` for OSD's ships.
        prob: Share of the crops placed on one of ``classes`` (where present). Defaults to 1/3 (nnU-Net).
        cat_max_ratio, ignore_index: As ``RandomCrop``'s, for the other crops.
    """

    def __init__(self, crop_size: Union[int, Tuple[int, int]], classes: Sequence[int], prob: float = 1 / 3,
                 cat_max_ratio: float = 1., ignore_index: int = 255) -> None:
        super().__init__(crop_size, cat_max_ratio=cat_max_ratio, ignore_index=ignore_index)
        classes = tuple(int(c) for c in classes)
        if not classes:
            raise ValueError('RareClassCrop: classes is empty; list the label ids to oversample, e.g. classes=(3, )')
        if ignore_index in classes:
            raise ValueError(f'RareClassCrop: classes={classes} holds ignore_index={ignore_index}')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'RareClassCrop: prob must be in [0, 1], got {prob}')
        self.classes = classes
        self.prob = float(prob)

    @cache_randomness
    def crop_bbox(self, results: dict) -> tuple:
        seg = results['gt_seg_map']
        if self.prob > 0 and np.random.rand() < self.prob:
            present = [mask for mask in (seg == c for c in self.classes) if mask.any()]
            if present:
                ys, xs = np.nonzero(present[np.random.randint(len(present))])
                k = np.random.randint(len(ys))
                return self._bbox_holding(seg.shape[:2], int(ys[k]), int(xs[k]))
        return super().crop_bbox(results)

    def _bbox_holding(self, shape: Tuple[int, int], y: int, x: int) -> tuple:
        """A crop position uniform among those whose crop holds pixel (y, x), as ``RandomCrop`` would cut it."""
        offsets = []
        for pos, size, crop in ((y, shape[0], self.crop_size[0]), (x, shape[1], self.crop_size[1])):
            margin = max(size - crop, 0)
            lo, hi = max(pos - crop + 1, 0), min(pos, margin)
            offsets.append(np.random.randint(lo, hi + 1))
        (oy, ox), (ch, cw) = offsets, self.crop_size
        return oy, oy + ch, ox, ox + cw

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, classes={self.classes}, prob={self.prob}, '
                f'cat_max_ratio={self.cat_max_ratio})')
