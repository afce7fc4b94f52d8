"""Image normalisation shared by the drawing helpers and the generation measures (numpy; cv2 only for luminance)."""
import numpy as np


def as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 1/3) image -> (H, W, 3) uint8, grey replicated into the three channels.

    Values of a non-uint8 image are taken as 0..255 grey levels: rounded half to even (``np.round``) and
    clipped to [0, 255]. A uint8 (H, W, 3) image is returned as it is (not copied).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f'expected an (H, W) or (H, W, 3) image, got shape {image.shape}')


def channels_equal(image: np.ndarray) -> bool:
    """Whether the three channels of an (H, W, 3) image are identical (a grey tile saved as RGB)."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) image unchanged; (H, W, 1) or (H, W, 3) with equal channels -> its first channel; other RGB ->
    luminance (``cv2.COLOR_RGB2GRAY`` of the uint8 image)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        if channels_equal(image):
            return image[..., 0]
        import cv2
        return cv2.cvtColor(np.ascontiguousarray(image.astype(np.uint8)), cv2.COLOR_RGB2GRAY)
    if image.ndim != 2:
        raise ValueError(f'expected an (H, W) or (H, W, 3) image, got shape {image.shape}')
    return image
