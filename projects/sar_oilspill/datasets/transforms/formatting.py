"""Packing of images, hard labels and soft labels (teacher logits) into SegDataSample."""
from typing import Dict

import numpy as np
from mmcv.transforms import to_tensor
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackSegInputsWithSoftLabels(PackSegInputs):
    """mmseg's PackSegInputs that also packs ``gt_soft_logits``.

    ``results['gt_soft_logits']`` is an (H, W, K + 1) float array (see ``LoadSoftLabels``): the K teacher logits
    (the D_aug soft labels) and a validity channel (1.0 = the pixel carries a soft label), moved by the same
    geometric transforms as the image. It is packed as ``data_sample.gt_soft_logits``, a PixelData with ``data``
    (K, H, W) float32 and ``valid`` (1, H, W) bool. Samples without soft labels are packed exactly as by
    PackSegInputs.
    """

    def transform(self, results: Dict) -> Dict:
        packed = super().transform(results)
        if 'gt_soft_logits' in results:
            where = results.get('img_path')
            soft = np.asarray(results['gt_soft_logits'], dtype=np.float32)
            if soft.ndim != 3 or soft.shape[2] < 2:
                raise ValueError(f'gt_soft_logits of {where}: expected (H, W, K + 1) (K logits and the validity '
                                 f'channel, see LoadSoftLabels), got {soft.shape}')
            if soft.shape[:2] != results['img'].shape[:2]:
                raise ValueError(
                    f'gt_soft_logits of {where}: size {soft.shape[:2]} differs from the image '
                    f'{results["img"].shape[:2]} after the pipeline; a transform moved the image but not the seg '
                    'fields (mmcv\'s Pad and CenterCrop move gt_seg_map only: use PadSegFields / '
                    'CenterCropSegFields)')
            chw = soft.transpose(2, 0, 1)
            valid = chw[-1:] == 1.0
            # unlabelled pixels hold fill values (255, 0): set them to 0, they are masked anyway
            logits = to_tensor(np.ascontiguousarray(np.where(valid, chw[:-1], 0.0))).float()
            valid = to_tensor(np.ascontiguousarray(valid))
            packed['data_samples'].set_data(dict(gt_soft_logits=PixelData(data=logits, valid=valid)))
        return packed
