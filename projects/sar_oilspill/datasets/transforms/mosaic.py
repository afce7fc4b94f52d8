"""Mosaics of synthetic tiles (paper Sec. 4.2, supplementary 12: 2x2; an n x n grid for smaller tiles)."""
from typing import Dict, List

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SoftLabelMosaic(BaseTransform):
    """Assemble ``grid x grid`` random tiles (default four, 2x2) into one image, carrying every seg field along.

    SAR-JointNet generates 256x256 tiles while OSD trains on 512x512 crops: four randomly chosen synthetic tiles
    form one input (as YOLOv4's mosaic, on a fixed 2x2 grid so that no tile is cut). Use it inside mmseg's
    ``MultiImageMixDataset``, which calls :meth:`get_indices` and puts the ``grid**2 - 1`` extra tiles (after the
    inner dataset's pipeline) into ``results['mix_results']``. Image, ``gt_seg_map`` and ``gt_soft_logits`` go through
    exactly the same placement, so later RandomFlip / RandomCrop keep them aligned.

    Layout (row-major): ``[[tile0, tile1], [tile2, tile3]]`` for ``grid=2``, where tile0 is the sample being
    loaded. A CPU-sized SAR-JointNet trained and sampled on 64x64 crops fills a 256x256 student input with
    ``grid=4``.

    Args:
        prob: Probability of building a mosaic; otherwise the single tile passes through unchanged.
        grid: Tiles per side (>= 2).
    """

    def __init__(self, prob: float = 1.0, grid: int = 2) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'SoftLabelMosaic: prob={prob} is not in [0, 1]')
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ValueError(f'SoftLabelMosaic: grid={grid!r}; expected an integer >= 2 (tiles per side)')
        self.prob = prob
        self.grid = grid

    def get_indices(self, dataset) -> List[int]:
        return [int(i) for i in np.random.randint(0, len(dataset), self.grid * self.grid - 1)]

    def transform(self, results: Dict) -> Dict:
        mix = results.pop('mix_results', None)
        if np.random.rand() >= self.prob:
            return results
        n = self.grid
        if not mix or len(mix) != n * n - 1:
            raise ValueError(f'SoftLabelMosaic(grid={n}) needs results["mix_results"] with {n * n - 1} tiles, got '
                             f"{len(mix) if mix else 0}; wrap the dataset in mmseg's MultiImageMixDataset")
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
            rows = [np.concatenate([tiles[r * n + c][key] for c in range(n)], axis=1) for r in range(n)]
            return np.ascontiguousarray(np.concatenate(rows, axis=0))

        results['img'] = grid('img')
        for key in fields:
            results[key] = grid(key)
        results['img_shape'] = results['img'].shape[:2]
        results['mosaic_img_paths'] = [t.get('img_path') for t in tiles]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, grid={self.grid})'
