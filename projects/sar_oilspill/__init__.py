"""SAR oil-spill segmentation plugin for MMSegmentation 1.x.

Importing this package registers every component (datasets, transforms, models,
losses, loops, hooks, metrics) into mmseg's registries. Configs switch it on with::

    custom_imports = dict(imports=['projects.sar_oilspill'], allow_failed_imports=False)
"""
from .version import __version__  # noqa: F401
from . import datasets, engine, evaluation, models  # noqa: F401,E402
from .utils.checkpoint_compat import allow_mmengine_checkpoint_types  # noqa: E402

allow_mmengine_checkpoint_types()
