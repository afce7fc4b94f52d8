"""Atomic, durable file writes: the one helper every writer of the project uses.

A file is written to ``<path>.tmp-<pid>`` (optionally keeping the extension, for writers that choose the format
from it), flushed to disk (``fsync``), renamed over ``path`` and the rename made durable (``fsync`` of the folder).
A reader, or a process started after a crash or power loss, sees the old complete file or the new complete file,
never a partial one; a failed write leaves no temporary file behind. Temporary names are recognised by
:func:`is_temporary` (listings skip them).

Used by the D_aug folder (:class:`~projects.sar_oilspill.datasets.daug.DAugFolder`), the checkpoint hook,
the generation grid and the command-line tools' JSON reports (:func:`write_json_atomic`).
"""
import json
import math
import os
import os.path as osp
from typing import Any, Callable

#: Marker of temporary names: ``<path>.tmp-<pid>`` (``<path>.tmp-<pid><ext>`` with ``keep_suffix``).
TMP_MARKER = '.tmp-'


def fsync_file(path: str) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a rename in folder ``path`` durable (a no-op where folders cannot be opened or synced)."""
    try:
        fd = os.open(path or '.', os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_name(path: str, keep_suffix: bool = False) -> str:
    """The temporary name :func:`atomic_write` writes ``path`` to first (per process)."""
    return f'{path}{TMP_MARKER}{os.getpid()}' + (osp.splitext(path)[1] if keep_suffix else '')


def is_temporary(name: str) -> bool:
    """True for a temporary name of :func:`atomic_write` (a listing must not take it for a finished file)."""
    return TMP_MARKER in osp.basename(name)


def atomic_write(path: str, write_fn: Callable[[str], Any], keep_suffix: bool = False) -> str:
    """Call ``write_fn(tmp)`` on a temporary name next to ``path``, fsync it, rename it to ``path``, fsync the folder.

    Args:
        path: Final file name.
        write_fn: Writes the whole content to the file name it is given.
        keep_suffix: End the temporary name with the file's extension (writers such as ``cv2.imwrite`` choose
            the format from it).

    Returns:
        ``path``.

    Raises:
        Whatever ``write_fn`` raises, and ``OSError`` (naming the file) when it wrote nothing. The temporary file
        is removed in every case; ``path`` is then unchanged.
    """
    tmp = temporary_name(path, keep_suffix)
    try:
        write_fn(tmp)
        if not osp.isfile(tmp):
            raise OSError(f'atomic_write: nothing was written for {path} (expected {tmp})')
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    fsync_dir(osp.dirname(osp.abspath(path)))
    return path


def atomic_write_bytes(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`); the folder is created."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(data)

    return atomic_write(path, write)


def write_json_atomic(obj: Any, path: str, indent: int = 2) -> str:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`atomic_write`); the folder is created.

    The object is serialised before anything is written, so an unserialisable one leaves ``path`` untouched.
    """
    return atomic_write_bytes(path, json.dumps(obj, indent=indent).encode('utf-8'))


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN / inf floats as ``None`` (null) and numpy scalars as Python numbers, for strict JSON."""
    import numpy as np
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
