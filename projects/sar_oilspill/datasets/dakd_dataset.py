"""The DAKD training set: the real set (hard labels) + SAR-JointNet's D_aug (soft labels), paper Sec. 3.1."""
import copy
from typing import List, Optional

from torch.utils.data import ConcatDataset
from mmseg.registry import DATASETS

DEFAULT_SYNTHETIC_PIPELINE = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputsWithSoftLabels'),
]


@DATASETS.register_module()
class DAKDDataset(ConcatDataset):
    """Concatenation of a real dataset and a D_aug dataset, built from a few switches.

    The synthetic part is ``DAugDataset(data_root, max_samples)`` with ``[LoadImageFromFile,
    LoadSoftLabels(label_mode)]``, optionally wrapped in mmseg's ``MultiImageMixDataset`` with
    :class:`SoftLabelMosaic` in front of ``synthetic_pipeline`` (OSD: four 256 tiles -> one 512 input). Its class
    names and palette are taken from the real dataset, so D_aug generated for other classes is refused.

    Variants are one-key overrides, e.g. the hard-label ablation
    ``train_dataloader = dict(dataset=dict(synthetic=dict(label_mode='hard')))`` or the amount of synthetic data
    ``dict(synthetic=dict(max_samples=1120))``.

    Args:
        real: Config of the real training dataset (hard labels).
        synthetic: ``dict(data_root=..., label_mode='soft'|'hard', max_samples=None, mosaic=False)``.
        synthetic_pipeline: Transforms applied after loading (and after the mosaic); must end with
            ``PackSegInputsWithSoftLabels``.
        use_real: Set False to train on D_aug alone.
    """

    def __init__(self, real: dict, synthetic: dict, synthetic_pipeline: Optional[List[dict]] = None,
                 use_real: bool = True, **kwargs) -> None:
        real_ds = DATASETS.build(real)
        syn = dict(dict(label_mode='soft', max_samples=None, mosaic=False), **synthetic)
        unknown = set(syn) - {'data_root', 'label_mode', 'max_samples', 'mosaic'}
        if unknown or 'data_root' not in syn:
            raise ValueError(f'DAKDDataset.synthetic: expected keys data_root, label_mode, max_samples, mosaic; '
                             f'got {sorted(syn)}')
        pipeline = copy.deepcopy(synthetic_pipeline or DEFAULT_SYNTHETIC_PIPELINE)
        if not pipeline or pipeline[-1].get('type') != 'PackSegInputsWithSoftLabels':
            raise ValueError('DAKDDataset.synthetic_pipeline must end with PackSegInputsWithSoftLabels '
                             '(PackSegInputs would drop the soft labels)')
        loading = [dict(type='LoadImageFromFile'), dict(type='LoadSoftLabels', label_mode=syn['label_mode'])]
        meta = dict(classes=real_ds.metainfo['classes'], palette=real_ds.metainfo.get('palette'))
        daug = dict(type='DAugDataset', data_root=syn['data_root'], metainfo=meta, max_samples=syn['max_samples'])
        if syn['mosaic']:
            syn_ds = DATASETS.build(dict(type='MultiImageMixDataset', dataset=dict(daug, pipeline=loading),
                                         pipeline=[dict(type='SoftLabelMosaic')] + pipeline))
        else:
            syn_ds = DATASETS.build(dict(daug, pipeline=loading + pipeline))
        if kwargs:
            raise TypeError(f'DAKDDataset got unexpected arguments {sorted(kwargs)}')
        self.real_dataset, self.synthetic_dataset = real_ds, syn_ds
        # torch's ConcatDataset: mmengine's refuses MultiImageMixDataset, which is not a BaseDataset.
        super().__init__([real_ds, syn_ds] if use_real else [syn_ds])

    @property
    def metainfo(self) -> dict:
        """The real dataset's meta information (classes, palette), shared by the synthetic part."""
        return copy.deepcopy(self.real_dataset.metainfo)

    def full_init(self) -> None:
        """Both parts are fully initialised on construction (mmengine calls this on datasets)."""
