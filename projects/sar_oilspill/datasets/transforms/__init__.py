from .formatting import PackSegInputsWithSoftLabels
from .geometric import CenterCropSegFields, PadSegFields, RareClassCrop
from .loading import LoadOilSpillAnnotations, LoadOilSpillImage
from .mosaic import SoftLabelMosaic
from .soft_labels import LoadSoftLabels

__all__ = ['CenterCropSegFields', 'LoadOilSpillAnnotations', 'LoadOilSpillImage', 'LoadSoftLabels',
           'PackSegInputsWithSoftLabels', 'PadSegFields', 'RareClassCrop', 'SoftLabelMosaic']
