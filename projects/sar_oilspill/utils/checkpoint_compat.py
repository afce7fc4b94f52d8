"""Let torch >= 2.6 (``weights_only=True`` by default) load the checkpoints mmengine 0.10.7 writes.

mmengine stores its message hub (``HistoryBuffer`` of numpy scalars) in every checkpoint; torch's safe unpickler
refuses those types, so ``tools/test.py CONFIG CKPT`` and ``--resume`` would fail on a checkpoint just written.
Instead of turning the safe loader off, the few types mmengine writes are allow-listed.
"""
import builtins

import numpy as np
import torch


def allow_mmengine_checkpoint_types() -> None:
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'int16',
                                                  'int8', 'uint8', 'bool')]
    # builtins.getattr is how numpy pickles reach its scalar constructors; the unpickler still only calls the
    # allow-listed globals.
    torch.serialization.add_safe_globals([HistoryBuffer, multiarray.scalar, multiarray._reconstruct, np.ndarray,
                                          np.dtype, builtins.getattr, *dtype_classes])
