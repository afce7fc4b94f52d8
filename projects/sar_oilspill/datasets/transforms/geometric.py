"""mmcv geometric transforms that move every seg field, for pipelines that carry soft labels.

mmseg's own ``RandomCrop``, ``RandomFlip``, ``Resize`` (and ``RandomResize`` / ``RandomChoiceResize`` /
``ResizeShortestEdge``, which build it), ``RandomRotate``, ``RandomRotFlip``, ``ResizeToMultiple`` and
``RandomCutOut`` move every key listed in ``results['seg_fields']``, including the (H, W, K + 1) float soft labels
of ``LoadSoftLabels`` (checked by ``tests/test_datasets/test_soft_label_transforms.py``). Two mmcv transforms that
mmseg configs use only move ``gt_seg_map``: ``Pad`` and ``CenterCrop``; the two below are the same transforms for
every seg field. mmseg's ``RandomMosaic`` builds 2-D label canvases and cannot hold multi-channel fields; use
``SoftLabelMosaic``.
"""
import mmcv
import numpy as np
from mmcv.transforms import CenterCrop, Pad
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
