"""Drawing helpers (cv2 / numpy only)."""
from .grid import (SOS_OVERLAY_PALETTE, default_palette, make_generation_grid, overlay_labels,
                   save_generation_grid)

__all__ = ['SOS_OVERLAY_PALETTE', 'default_palette', 'make_generation_grid', 'overlay_labels',
           'save_generation_grid']
