from . import transforms  # noqa: F401
from .osd import OSDDataset
from .sos import SOSDataset

__all__ = ['OSDDataset', 'SOSDataset']
