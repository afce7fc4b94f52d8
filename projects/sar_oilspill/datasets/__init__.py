from . import transforms  # noqa: F401
from .dakd_dataset import DAKDDataset
from .daug import DAugDataset
from .osd import OSDDataset
from .sos import SOSDataset

__all__ = ['DAKDDataset', 'DAugDataset', 'OSDDataset', 'SOSDataset']
