from . import backbones, decode_heads, generators, losses, necks, segmentors  # noqa: F401
from .data_preprocessor import SoftLabelSegDataPreProcessor  # noqa: F401
