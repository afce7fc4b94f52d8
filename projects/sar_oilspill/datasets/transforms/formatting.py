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

    ``results['gt_soft_logits']`` is an (H, W, K) float array of teacher logits (the D_aug soft labels) that went
    through the same geometric transforms as the image. It is packed as ``data_sample.gt_soft_logits`` with data
    (K, H, W) float32. Samples without soft labels are packed exactly as by PackSegInputs.
    """

    def transform(self, results: Dict) -> Dict:
        packed = super().transform(results)
        if 'gt_soft_logits' in results:
            logits = np.asarray(results['gt_soft_logits'], dtype=np.float32)
            if logits.ndim != 3:
                raise ValueError(f'gt_soft_logits of {results.get("img_path")}: expected (H, W, K), got '
                                 f'{logits.shape}')
            if logits.shape[:2] != results['img'].shape[:2]:
                raise ValueError(f'gt_soft_logits of {results.get("img_path")}: size {logits.shape[:2]} differs '
                                 f'from the image {results["img"].shape[:2]} after the pipeline')
            tensor = to_tensor(np.ascontiguousarray(logits.transpose(2, 0, 1))).float()
            packed['data_samples'].set_data(dict(gt_soft_logits=PixelData(data=tensor)))
        return packed
