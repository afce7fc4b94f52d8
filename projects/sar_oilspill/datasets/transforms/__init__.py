from .formatting import PackSegInputsWithSoftLabels
from .loading import LoadOilSpillAnnotations

__all__ = ['LoadOilSpillAnnotations', 'PackSegInputsWithSoftLabels']
