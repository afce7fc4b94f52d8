from .caft import CAFTBlock
from .unetpp_skip import UNetPPSkip

__all__ = ['CAFTBlock', 'UNetPPSkip']
