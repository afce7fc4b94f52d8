from .formatting import PackSegInputsWithSoftLabels
from .loading import LoadOilSpillAnnotations
from .mosaic import SoftLabelMosaic
from .soft_labels import LoadSoftLabels

__all__ = ['LoadOilSpillAnnotations', 'LoadSoftLabels', 'PackSegInputsWithSoftLabels', 'SoftLabelMosaic']
