from . import transforms  # noqa: F401
from .daug import DAugDataset
from .osd import OSDDataset
from .sos import SOSDataset

__all__ = ['DAugDataset', 'OSDDataset', 'SOSDataset']
