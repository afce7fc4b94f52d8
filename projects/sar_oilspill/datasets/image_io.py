"""The one image and label-map reader of the project.

The dataset checker, the training pipelines (:class:`LoadOilSpillImage`, :class:`LoadOilSpillAnnotations`), the
balancing-factor tool and inference all read files through :func:`read_image` / :func:`read_label`, so a file
that one of them refuses is refused by all, with the same message naming it.

Decoding is OpenCV's ``cv2.imdecode`` (what mmcv's ``LoadImageFromFile`` uses with its default ``cv2`` backend),
so a good file gives the same array as before. It is made strict: libjpeg decodes a truncated JPEG into an image
with grey padding (only printing "Premature end of JPEG file"), so the bytes are checked first: a JPEG must have
its end-of-image marker after the last scan, a PNG must reach its ``IEND`` chunk. An empty file, a missing file,
a truncated or undecodable one, or a label map with an unexpected number of channels or dtype raises
:class:`ImageReadError` (an ``OSError``) whose message names the file and what was expected.
"""
import os.path as osp
import struct
from typing import Optional

import cv2
import numpy as np

#: ``color_type`` values, as in mmcv's ``imfrombytes`` (``flag``).
COLOR_TYPES = {
    'color': cv2.IMREAD_COLOR,
    'grayscale': cv2.IMREAD_GRAYSCALE,
    'unchanged': cv2.IMREAD_UNCHANGED,
    'color_ignore_orientation': cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR,
    'grayscale_ignore_orientation': cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_GRAYSCALE,
}

_JPEG_SOI = b'\xff\xd8\xff'
_JPEG_SOS = b'\xff\xda'
_JPEG_EOI = b'\xff\xd9'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_CHECK_HINT = 'tools/dataset_tools/check_dataset.py lists every such file of a dataset'


class ImageReadError(OSError):
    """An image or label file that cannot be used: missing, empty, truncated, undecodable or of the wrong kind.

    The message names the file and what was expected.
    """


def check_encoded(data: bytes, path: str = '<bytes>', kind: str = 'image') -> None:
    """Raise :class:`ImageReadError` when ``data`` is empty or a visibly truncated JPEG/PNG.

    JPEG: the end-of-image marker ``FF D9`` must follow the last start-of-scan ``FF DA`` (entropy-coded data cannot
    contain ``FF D9``: a ``FF`` byte there is always stuffed). PNG: the chunk list must be complete up to ``IEND``.
    Other formats are left to the decoder.
    """
    if len(data) == 0:
        raise ImageReadError(f'{path}: unreadable {kind}: empty file (0 bytes); expected an image file')
    if data.startswith(_JPEG_SOI):
        sos = data.rfind(_JPEG_SOS)
        if sos < 0:
            raise ImageReadError(f'{path}: unreadable {kind}: truncated JPEG ({len(data)} bytes, no image data); '
                                 f'expected a complete JPEG file. {_CHECK_HINT}')
        if data.rfind(_JPEG_EOI) < sos:
            raise ImageReadError(f'{path}: unreadable {kind}: truncated JPEG ({len(data)} bytes, no end-of-image '
                                 f'marker after the image data); expected a complete JPEG file. {_CHECK_HINT}')
    elif data.startswith(_PNG_SIGNATURE):
        pos = len(_PNG_SIGNATURE)
        while True:
            if pos + 12 > len(data):
                raise ImageReadError(f'{path}: unreadable {kind}: truncated PNG ({len(data)} bytes, ends before '
                                     f'its IEND chunk); expected a complete PNG file. {_CHECK_HINT}')
            length, ctype = struct.unpack('>I4s', data[pos:pos + 8])
            pos += 12 + length
            if ctype == b'IEND':
                break
        if pos > len(data):
            raise ImageReadError(f'{path}: unreadable {kind}: truncated PNG ({len(data)} bytes); expected a '
                                 f'complete PNG file. {_CHECK_HINT}')


def _read_bytes(path: str, backend_args: Optional[dict] = None, kind: str = 'image') -> bytes:
    if backend_args is not None:
        from mmengine import fileio
        try:
            return fileio.get(path, backend_args=backend_args)
        except Exception as e:  # noqa: BLE001  (any backend's error becomes one error type naming the file)
            raise ImageReadError(f'{path}: unreadable {kind}: {type(e).__name__}: {e}') from e
    if not osp.isfile(path):
        raise ImageReadError(f'{path}: unreadable {kind}: file does not exist' if not osp.exists(path) else
                             f'{path}: unreadable {kind}: not a file; expected an image file')
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise ImageReadError(f'{path}: unreadable {kind}: {e.strerror or e}') from e


def decode_image(data: bytes, path: str = '<bytes>', color_type: str = 'color', kind: str = 'image') -> np.ndarray:
    """Strictly decode encoded image bytes (see the module docstring); ``path`` and ``kind`` are used in messages."""
    if color_type not in COLOR_TYPES:
        raise ValueError(f'color_type={color_type!r}; expected one of {sorted(COLOR_TYPES)}')
    check_encoded(data, path, kind)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), COLOR_TYPES[color_type])
    except cv2.error as e:
        raise ImageReadError(f'{path}: unreadable {kind}: not decodable ({str(e).strip().splitlines()[-1]})') from e
    if img is None or img.size == 0:
        raise ImageReadError(f'{path}: unreadable {kind}: not decodable ({len(data)} bytes); expected a JPEG, '
                             f'PNG, TIFF or another format OpenCV reads. {_CHECK_HINT}')
    return img


def read_image(path: str, color_type: str = 'color', channel_order: str = 'bgr',
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an image file strictly.

    Args:
        path: The file.
        color_type: ``'color'`` (uint8 ``(H, W, 3)``, like ``cv2.imread(path, cv2.IMREAD_COLOR)`` and mmcv's
            ``LoadImageFromFile``), ``'grayscale'`` (uint8 ``(H, W)``), ``'unchanged'`` or one of the
            ``*_ignore_orientation`` flags (see :data:`COLOR_TYPES`).
        channel_order: ``'bgr'`` (OpenCV's) or ``'rgb'`` for 3-channel results.
        backend_args: mmengine file backend arguments (``None``: a local file).

    Raises:
        ImageReadError: missing, empty, truncated or undecodable file (the message names it).
    """
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f'channel_order={channel_order!r}; expected "bgr" or "rgb"')
    img = decode_image(_read_bytes(path, backend_args), path, color_type)
    if channel_order == 'rgb' and img.ndim == 3 and img.shape[2] >= 3:
        img = np.ascontiguousarray(img[..., [2, 1, 0] + list(range(3, img.shape[2]))])
    return img


def read_label(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a label map as stored: ``(H, W)`` single channel, or ``(H, W, 3)`` in **RGB** order (alpha dropped).

    Raises:
        ImageReadError: missing, empty, truncated or undecodable file, a channel count other than 1, 3 or 4, or a
            dtype other than 8/16-bit unsigned integers (the message names the file).
    """
    raw = decode_image(_read_bytes(path, backend_args, 'label map'), path, 'unchanged', 'label map')
    if raw.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f'{path}: unreadable label map: dtype {raw.dtype}; expected 8-bit (or 16-bit) '
                             'integer labels')
    if raw.ndim == 3:
        if raw.shape[2] == 1:
            return raw[..., 0]
        if raw.shape[2] not in (3, 4):
            raise ImageReadError(f'{path}: unreadable label map: {raw.shape[2]} channels; expected 1 (class '
                                 'indices), 3 (RGB) or 4 (RGBA)')
        raw = np.ascontiguousarray(raw[..., 2::-1])  # BGR(A) -> RGB
    elif raw.ndim != 2:
        raise ImageReadError(f'{path}: unreadable label map: shape {raw.shape}; expected (H, W) or (H, W, 3)')
    return raw
