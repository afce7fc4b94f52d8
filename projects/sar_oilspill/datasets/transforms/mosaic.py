"""2x2 mosaics of synthetic tiles (paper Sec. 4.2, supplementary 12)."""
from typing import Dict, List

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SoftLabelMosaic(BaseTransform):
    """Assemble four random tiles into one 2x2 image, carrying every seg field along.

    SAR-JointNet generates 256x256 tiles while OSD trains on 512x512 crops: four randomly chosen synthetic tiles
    form one input (as YOLOv4's mosaic, on a fixed 2x2 grid so that no tile is cut). Use it inside mmseg's
    ``MultiImageMixDataset``, which calls :meth:`get_indices` and puts the three extra tiles (after the inner
    dataset's pipeline) into ``results['mix_results']``. Image, ``gt_seg_map`` and ``gt_soft_logits`` go through
    exactly the same placement, so later RandomFlip / RandomCrop keep them aligned.

    Layout: ``[[tile0, tile1], [tile2, tile3]]`` where tile0 is the sample being loaded.

    Args:
        prob: Probability of building a mosaic; otherwise the single tile passes through unchanged.
    """

    def __init__(self, prob: float = 1.0) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'SoftLabelMosaic: prob={prob} is not in [0, 1]')
        self.prob = prob

    def get_indices(self, dataset) -> List[int]:
        return [int(i) for i in np.random.randint(0, len(dataset), 3)]

    def transform(self, results: Dict) -> Dict:
        mix = results.pop('mix_results', None)
        if np.random.rand() >= self.prob:
            return results
        if not mix or len(mix) != 3:
            raise ValueError('SoftLabelMosaic needs results["mix_results"] with 3 tiles; wrap the dataset in '
                             "mmseg's MultiImageMixDataset")
        tiles = [results] + list(mix)
        h, w = results['img'].shape[:2]
        fields = list(results.get('seg_fields', []))
        for t in tiles[1:]:
            if t['img'].shape[:2] != (h, w):
                raise ValueError(f'SoftLabelMosaic: tile {t.get("img_path")} is {t["img"].shape[:2]}, expected '
                                 f'{(h, w)} like {results.get("img_path")}')
            if sorted(t.get('seg_fields', [])) != sorted(fields):
                raise ValueError(f'SoftLabelMosaic: tile {t.get("img_path")} has seg fields '
                                 f'{t.get("seg_fields")}, expected {fields} (mixing soft and hard tiles?)')

        def grid(key):
            rows = [np.concatenate([tiles[0][key], tiles[1][key]], axis=1),
                    np.concatenate([tiles[2][key], tiles[3][key]], axis=1)]
            return np.ascontiguousarray(np.concatenate(rows, axis=0))

        results['img'] = grid('img')
        for key in fields:
            results[key] = grid(key)
        results['img_shape'] = results['img'].shape[:2]
        results['mosaic_img_paths'] = [t.get('img_path') for t in tiles]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'
