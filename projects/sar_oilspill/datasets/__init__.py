from . import transforms  # noqa: F401
from .dakd_dataset import DAKDDataset
from .daug import DAugDataset
from .image_io import ImageReadError, read_image, read_label
from .osd import OSDDataset
from .sos import SOSDataset

__all__ = ['DAKDDataset', 'DAugDataset', 'ImageReadError', 'OSDDataset', 'SOSDataset', 'read_image', 'read_label']
