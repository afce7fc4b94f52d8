"""Access to the model a runner holds, shared by the SAR-JointNet loops."""
from typing import Sequence

from mmengine.model import is_model_wrapper


def unwrap_jointnet(runner, needs: Sequence[str], who: str):
    """The runner's model without its DDP wrapper; a TypeError naming ``who`` unless it has ``needs``."""
    model = runner.model
    model = model.module if is_model_wrapper(model) else model
    if not all(hasattr(model, attr) for attr in needs):
        raise TypeError(f'{who} needs a SARJointNet model, got {type(model).__name__}')
    return model
