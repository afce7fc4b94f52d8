from . import backbones, decode_heads, generators, losses, necks, segmentors  # noqa: F401
