from . import pretrained  # noqa: F401  (registers the weights loader for the release URLs)
from .mambavision import MambaVision
from .scse_resnet import SCSEResNet
from .selective_scan import (selective_scan_chunked, selective_scan_fn,
                             selective_scan_sequential)

__all__ = [
    'MambaVision', 'SCSEResNet', 'selective_scan_fn', 'selective_scan_chunked', 'selective_scan_sequential'
]
