"""Loading of D_aug soft labels (teacher logits)."""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..daug import read_daug_logits, read_daug_valid


@TRANSFORMS.register_module()
class LoadSoftLabels(BaseTransform):
    """Load ``results['soft_logits_path']`` ((K, H, W) ``.npy`` teacher logits) for DAKD training.

    ``label_mode='soft'`` (the paper's DAKD): ``gt_soft_logits`` is added for the KD and Dice losses and
    ``gt_seg_map`` is all 255 (no hard label, CE ignores the sample). ``label_mode='hard'`` (Table 7's "HL"
    ablation): ``gt_seg_map = argmax`` of the logits and no soft labels. Both are added to ``seg_fields`` so every
    geometric transform moves them with the image.

    Layout of ``results['gt_soft_logits']``: (H, W, K + 1) float32, channels last like an image (the layout mmcv's
    and mmseg's transforms handle): the K teacher logits, then a validity channel, 1.0 where the pixel carries a
    soft label. Transforms that fill pixels (``RandomRotate`` borders, ``RandomCutOut``, paddings) write their
    seg fill value (255 or 0) there, which marks those pixels as unlabelled; since the channel lives in the same
    array as the logits, it gets exactly the same geometry and interpolation. ``PackSegInputsWithSoftLabels``
    splits it into ``gt_soft_logits.data`` (K, H, W) and ``gt_soft_logits.valid`` (1, H, W) (``== 1.0``).

    A masked D_aug (``label_mask: true`` in its manifest; :class:`DAugDataset` then gives
    ``results['soft_valid_path']``) labels only some pixels: the validity channel is 0 where its mask is, so KD and
    Dice skip them, and in ``'hard'`` mode ``gt_seg_map`` is ``ignore_index`` there.

    Args:
        label_mode: ``'soft'`` or ``'hard'``.
        ignore_index: Value of "no hard label".
    """

    def __init__(self, label_mode: str = 'soft', ignore_index: int = 255) -> None:
        if label_mode not in ('soft', 'hard'):
            raise ValueError(f'LoadSoftLabels: label_mode={label_mode!r}, expected "soft" or "hard"')
        self.label_mode = label_mode
        self.ignore_index = ignore_index

    def transform(self, results: Dict) -> Dict:
        path = results['soft_logits_path']
        logits = read_daug_logits(path, results.get('num_classes'))
        if 'img_shape' in results and tuple(logits.shape[1:]) != tuple(results['img_shape'][:2]):
            raise ValueError(f'{path}: logits are {logits.shape[1:]} but the image {results.get("img_path")} is '
                             f'{tuple(results["img_shape"][:2])}')
        valid = None
        if results.get('soft_valid_path') is not None:
            valid = read_daug_valid(results['soft_valid_path'], logits.shape[1:])
        fields = results.setdefault('seg_fields', [])
        if self.label_mode == 'soft':
            soft = np.ones(logits.shape[1:] + (logits.shape[0] + 1, ), np.float32)  # last channel: valid = 1
            soft[..., :-1] = logits.transpose(1, 2, 0)
            if valid is not None:
                soft[..., -1] = valid
            results['gt_soft_logits'] = soft
            results['gt_seg_map'] = np.full(logits.shape[1:], self.ignore_index, np.uint8)
            fields.append('gt_soft_logits')
        else:
            results['gt_seg_map'] = logits.argmax(0).astype(np.uint8)
            if valid is not None:
                results['gt_seg_map'][~valid] = self.ignore_index
        fields.append('gt_seg_map')
        results['reduce_zero_label'] = False
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(label_mode={self.label_mode!r})'
