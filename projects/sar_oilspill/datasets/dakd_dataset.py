"""The DAKD training set: the real set (hard labels) + SAR-JointNet's D_aug (soft labels), paper Sec. 3.1."""
import copy
from typing import List, Optional

import numpy as np
from mmengine.logging import print_log
from torch.utils.data import ConcatDataset, Dataset
from mmseg.registry import DATASETS

#: Transforms that cannot carry soft labels (they move ``gt_seg_map`` only, or build 2-D label canvases), with the
#: replacement to use.
SOFT_LABEL_UNSAFE = dict(Pad='PadSegFields', CenterCrop='CenterCropSegFields', RandomMosaic='SoftLabelMosaic')

DEFAULT_SYNTHETIC_PIPELINE = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputsWithSoftLabels'),
]


@DATASETS.register_module()
class DAKDDataset(ConcatDataset):
    """Concatenation of a real dataset and a D_aug dataset, built from a few switches.

    The synthetic part is ``DAugDataset(data_root, max_samples)`` with ``[LoadOilSpillImage,
    LoadSoftLabels(label_mode)]``, optionally wrapped in mmseg's ``MultiImageMixDataset`` with
    :class:`SoftLabelMosaic` in front of ``synthetic_pipeline`` (OSD: four 256 tiles -> one 512 input;
    ``mosaic=4``: a 4x4 grid, e.g. sixteen 64 tiles -> one 256 input). Its class
    names and palette are taken from the real dataset, so D_aug generated for other classes is refused.

    Variants are one-key overrides, e.g. the hard-label ablation
    ``train_dataloader = dict(dataset=dict(synthetic=dict(label_mode='hard')))`` or the amount of synthetic data
    ``dict(synthetic=dict(max_samples=1120))``.

    The real:synthetic mix of an epoch is one value, ``synthetic.tile_uses_per_epoch`` (``u``, default 1.0): with
    ``N`` generated tiles and ``m`` tiles per input (``n * n`` with an n x n mosaic, else 1) an epoch holds every real sample
    once and ``round(u * N / m)`` synthetic inputs, so each tile is used ``u`` times per epoch on average. OSD:
    4480 tiles -> 1120 mosaics beside the 1002 real images (the reading of the paper's Table 11; 53 % synthetic);
    SOS-ALOS: 12404 tiles beside 3101 real tiles. ``u = 4`` with mosaics is the former behaviour of one mosaic per
    tile (OSD: 4480 mosaics, 82 % synthetic, an epoch 5.5x as long as real-only). When there are fewer inputs than
    tiles, input ``i`` starts from a random tile of the ``i``-th of ``L`` equal strata of the tiles (the other
    three mosaic tiles are random), so every tile keeps the same chance. The mix is logged on construction and
    available as ``num_real`` / ``num_synthetic``.

    Args:
        real: Config of the real training dataset (hard labels).
        synthetic: ``dict(data_root=..., label_mode='soft'|'hard', max_samples=None, mosaic=False,
            tile_uses_per_epoch=1.0)``; ``mosaic``: False, True (2x2) or the tiles per side n >= 2.
        synthetic_pipeline: Transforms applied after loading (and after the mosaic); must end with
            ``PackSegInputsWithSoftLabels``.
        use_real: Set False to train on D_aug alone.
    """

    def __init__(self, real: dict, synthetic: dict, synthetic_pipeline: Optional[List[dict]] = None,
                 use_real: bool = True, **kwargs) -> None:
        real_ds = DATASETS.build(real)
        syn = dict(dict(label_mode='soft', max_samples=None, mosaic=False, tile_uses_per_epoch=1.0), **synthetic)
        unknown = set(syn) - {'data_root', 'label_mode', 'max_samples', 'mosaic', 'tile_uses_per_epoch'}
        if unknown or 'data_root' not in syn:
            raise ValueError(f'DAKDDataset.synthetic: expected keys data_root, label_mode, max_samples, mosaic, '
                             f'tile_uses_per_epoch; got {sorted(syn)}')
        uses = syn['tile_uses_per_epoch']
        if isinstance(uses, bool) or not isinstance(uses, (int, float)) or not uses > 0:
            raise ValueError(f'DAKDDataset.synthetic.tile_uses_per_epoch={uses!r}; expected a number > 0 (uses of '
                             'each generated tile per epoch, 1.0 = each tile once)')
        mosaic = syn['mosaic']
        if mosaic is True or mosaic is False:
            grid = 2 if mosaic else 0
        elif isinstance(mosaic, int) and mosaic >= 2:
            grid = mosaic
        else:
            raise ValueError(f'DAKDDataset.synthetic.mosaic={mosaic!r}; expected False, True (2x2) or an integer >= 2 '
                             '(tiles per side)')
        pipeline = copy.deepcopy(synthetic_pipeline or DEFAULT_SYNTHETIC_PIPELINE)
        if not pipeline or pipeline[-1].get('type') != 'PackSegInputsWithSoftLabels':
            raise ValueError('DAKDDataset.synthetic_pipeline must end with PackSegInputsWithSoftLabels '
                             '(PackSegInputs would drop the soft labels)')
        for t in pipeline:
            if syn['label_mode'] == 'soft' and t.get('type') in SOFT_LABEL_UNSAFE:
                raise ValueError(f'DAKDDataset.synthetic_pipeline: {t.get("type")} does not move soft labels '
                                 f'(multi-channel seg fields); use {SOFT_LABEL_UNSAFE[t.get("type")]}')
        loading = [dict(type='LoadOilSpillImage'), dict(type='LoadSoftLabels', label_mode=syn['label_mode'])]
        meta = dict(classes=real_ds.metainfo['classes'], palette=real_ds.metainfo.get('palette'))
        daug = dict(type='DAugDataset', data_root=syn['data_root'], metainfo=meta, max_samples=syn['max_samples'])
        if grid:
            syn_ds = DATASETS.build(dict(type='MultiImageMixDataset', dataset=dict(daug, pipeline=loading),
                                         pipeline=[dict(type='SoftLabelMosaic', grid=grid)] + pipeline))
        else:
            syn_ds = DATASETS.build(dict(daug, pipeline=loading + pipeline))
        if kwargs:
            raise TypeError(f'DAKDDataset got unexpected arguments {sorted(kwargs)}')
        num_tiles = len(syn_ds)
        tiles_per_input = grid * grid if grid else 1
        num_inputs = max(1, int(round(uses * num_tiles / tiles_per_input)))
        if num_inputs != num_tiles:
            syn_ds = EpochResampledDataset(syn_ds, num_inputs)
        self.real_dataset, self.synthetic_dataset = real_ds, syn_ds
        self.num_real = len(real_ds) if use_real else 0
        self.num_synthetic = num_inputs
        print_log(f'DAKDDataset: {self.num_real} real + {num_inputs} synthetic inputs per epoch '
                  f'({num_tiles} tiles{f", {grid}x{grid} mosaics" if grid else ""}, each used {uses:g}x per epoch): '
                  f'{100.0 * num_inputs / (self.num_real + num_inputs):.1f} % synthetic', logger='current')
        # torch's ConcatDataset: mmengine's refuses MultiImageMixDataset, which is not a BaseDataset.
        super().__init__([real_ds, syn_ds] if use_real else [syn_ds])

    @property
    def metainfo(self) -> dict:
        """The real dataset's meta information (classes, palette), shared by the synthetic part."""
        return copy.deepcopy(self.real_dataset.metainfo)

    def full_init(self) -> None:
        """Both parts are fully initialised on construction (mmengine calls this on datasets)."""


class EpochResampledDataset(Dataset):
    """A dataset of ``length`` items drawn evenly from another dataset.

    Item ``i`` is a random item of the ``i``-th of ``length`` equal strata of ``dataset`` (``length <= len``), or
    item ``floor(i * len / length)`` (``length > len``: each item about ``length / len`` times). Randomness uses
    ``np.random``, seeded per worker by mmengine, as the mosaic's choice of the other tiles.
    """

    def __init__(self, dataset, length: int) -> None:
        if length < 1 or len(dataset) < 1:
            raise ValueError(f'EpochResampledDataset: length={length} of a dataset of {len(dataset)} items')
        self.dataset, self.length = dataset, int(length)

    def __len__(self) -> int:
        return self.length

    def source_range(self, idx: int) -> range:
        """Indices of ``dataset`` that item ``idx`` may come from."""
        if not 0 <= idx < self.length:
            raise IndexError(f'EpochResampledDataset: index {idx} out of range for length {self.length}')
        n = len(self.dataset)
        start, end = idx * n // self.length, (idx + 1) * n // self.length
        return range(start, max(end, start + 1))

    def __getitem__(self, idx: int):
        r = self.source_range(idx)
        return self.dataset[r.start + (int(np.random.randint(len(r))) if len(r) > 1 else 0)]
