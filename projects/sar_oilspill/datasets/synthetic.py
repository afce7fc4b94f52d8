"""Synthetic SAR oil-spill scenes with OSD classes, for the embedded demo and for tests.

No real SAR data is needed to try the pipeline: :func:`make_sar_scene` draws one scene with

* a wind-driven backscatter field (a linear gradient in a random direction times low-frequency modulation),
* elongated dark oil slicks (thick random curves, strongly damped backscatter) -> class 1,
* diffuse look-alikes (low-wind blobs with soft edges, mildly damped) -> class 2,
* bright elongated ships (8-24 x 3-5 pixels, any heading) with cross-shaped side lobes -> class 3,
* textured land behind a fractal coastline -> class 4,
* multiplicative gamma speckle with ``looks`` looks (Goodman's fully developed speckle model),

and returns an 8-bit image and the class-index label map. Everything depends only on ``seed``.
Classes and colours are OSD's (:class:`OSDDataset`).
"""
from typing import Callable, Optional, Tuple

import cv2
import numpy as np

SEA, OIL, LOOK_ALIKE, SHIP, LAND = range(5)


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ~``scale`` pixels."""
    h, w = shape
    small = (max(2, int(np.ceil(h / scale)) + 2), max(2, int(np.ceil(w / scale)) + 2))
    field = rng.standard_normal(small).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    field -= field.mean()
    return field / (field.std() + 1e-6)


def _fractal_noise(rng: np.random.Generator, shape: Tuple[int, int], base_scale: float, octaves: int = 4
                   ) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    amp, scale = 1.0, base_scale
    for _ in range(octaves):
        out += amp * _smooth_noise(rng, shape, max(scale, 2.0))
        amp *= 0.5
        scale /= 2.0
    return out / (out.std() + 1e-6)


def _slick_mask(rng: np.random.Generator, shape: Tuple[int, int]) -> np.ndarray:
    """One elongated slick: a wandering thick curve, feathered and thresholded."""
    h, w = shape
    n = int(rng.integers(6, 14))
    start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    heading = rng.uniform(0, 2 * np.pi)
    step = rng.uniform(0.04, 0.09) * max(h, w)
    pts = [start]
    for _ in range(n):
        heading += rng.normal(0, 0.35)
        pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    canvas = np.zeros(shape, np.uint8)
    thickness = rng.uniform(0.01, 0.035) * min(h, w)
    for i, (a, b) in enumerate(zip(pts[:-1], pts[1:])):
        t = max(1, int(thickness * (1.0 - 0.6 * i / n)))  # the slick thins out downwind
        cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, t, cv2.LINE_AA)
    blurred = cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), sigmaX=max(1.0, thickness / 3))
    ragged = blurred * (1.0 + 0.5 * _smooth_noise(rng, shape, max(3.0, thickness / 2)))
    return ragged > 0.35


def _blob_mask(rng: np.random.Generator, shape: Tuple[int, int]) -> np.ndarray:
    h, w = shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(0.08, 0.25) * h, rng.uniform(0.08, 0.25) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return d + 0.6 * _smooth_noise(rng, shape, max(4.0, min(rx, ry) / 2)) < 1.0


# Recorded in every written set; bump it whenever make_sar_scene draws different scenes for the same seed, so that
# sets drawn by an older generator are recognised (and replaced, see write_synthetic_osd).
GENERATOR_VERSION = 'make_sar_scene v2'  # v2: ships are elongated hulls, no longer 1-2 px discs


def make_sar_scene(seed: int, height: int = 256, width: int = 256, *, looks: Optional[float] = None,
                   p_land: float = 0.35, max_slicks: int = 3, max_lookalikes: int = 2, max_ships: int = 4
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic SAR scene.

    Args:
        seed: The only source of randomness.
        height, width: Scene size in pixels.
        looks: Equivalent number of looks of the speckle (gamma shape); random in [1.5, 5] when None.
        p_land: Probability that the scene contains land.
        max_slicks, max_lookalikes, max_ships: Upper bounds of the number of objects of each kind.

    Returns:
        image: (H, W) uint8 intensity image (log-scaled backscatter).
        label: (H, W) uint8 class indices: 0 sea, 1 oil spill, 2 look-alike, 3 ship, 4 land.
    """
    if height < 8 or width < 8:
        raise ValueError(f'make_sar_scene: scene must be at least 8x8, got {height}x{width}')
    rng = np.random.default_rng(seed)
    shape = (height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    label = np.zeros(shape, np.uint8)

    # Wind-driven sea backscatter: gradient across the swath times slow modulation (linear power units).
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    sigma0 = 0.5 * np.exp(rng.uniform(0.3, 1.0) * ramp + 0.25 * _smooth_noise(rng, shape, 0.3 * max(shape)))

    for _ in range(int(rng.integers(0, max_lookalikes + 1))):
        m = _blob_mask(rng, shape)
        sigma0[m] *= rng.uniform(0.35, 0.6)
        label[m] = LOOK_ALIKE
    for _ in range(int(rng.integers(1, max_slicks + 1))):
        m = _slick_mask(rng, shape)
        sigma0[m] *= rng.uniform(0.05, 0.2)
        label[m] = OIL
    if rng.random() < p_land:
        # Land behind a fractal coastline roughly perpendicular to a random direction.
        a = rng.uniform(0, 2 * np.pi)
        side = (np.cos(a) * (xx / width - 0.5) + np.sin(a) * (yy / height - 0.5))
        coast = side + 0.12 * _fractal_noise(rng, shape, 0.25 * max(shape)) > rng.uniform(0.1, 0.35)
        texture = np.exp(0.6 * _fractal_noise(rng, shape, 0.08 * max(shape)))
        sigma0[coast] = (rng.uniform(1.5, 3.0) * texture)[coast]
        label[coast] = LAND
    for _ in range(int(rng.integers(0, max_ships + 1))):
        cy, cx = int(rng.integers(2, height - 2)), int(rng.integers(2, width - 2))
        if label[cy, cx] == LAND:
            continue
        # A ship seen at ~10 m pixels: a bright elongated hull (8-24 px long, 3-5 px wide, any heading; a 80-240 m
        # vessel) with the cross-shaped azimuth/range side lobes of its strong scatterers (not labelled).
        length, beam = int(rng.integers(8, 25)), int(rng.integers(3, 6))
        heading = float(rng.uniform(0, 180))
        ship = np.zeros(shape, np.float32)
        arm = int(rng.integers(length // 2 + 2, length + 4))
        cv2.line(ship, (cx - arm, cy), (cx + arm, cy), 0.3, 1)
        cv2.line(ship, (cx, cy - arm), (cx, cy + arm), 0.3, 1)
        cv2.ellipse(ship, (cx, cy), (length // 2, beam // 2), heading, 0, 360, 1.0, -1)  # the hull over its lobes
        sigma0 = np.maximum(sigma0, ship * rng.uniform(8, 20))
        label[ship >= 1.0] = SHIP

    looks = rng.uniform(1.5, 5.0) if looks is None else looks
    speckle = rng.gamma(shape=looks, scale=1.0 / looks, size=shape).astype(np.float32)
    intensity = sigma0 * speckle
    db = 10 * np.log10(np.maximum(intensity, 1e-4))
    image = np.clip((db + 25.0) / 40.0 * 255.0, 0, 255).astype(np.uint8)
    return image, label


def write_synthetic_osd(root: str, num_train: int = 200, num_test: int = 40, height: int = 256, width: int = 256,
                        seed: int = 0, overwrite: bool = False,
                        progress: Optional[Callable[[int, int], None]] = None,
                        scene_kwargs: Optional[dict] = None) -> str:
    """Write a synthetic dataset in OSD's on-disk layout (images, RGB ``labels`` and ``labels_1D``).

    The set is written into a temporary sibling folder and renamed into place at the end, so an interrupted run
    never leaves a half-written dataset at ``root``. An existing set made with the same settings is reused; one
    that differs only by the generator version (drawn by an older :func:`make_sar_scene`) is redrawn; one made with
    other settings is an error unless ``overwrite``.

    Args:
        root: Output folder (e.g. ``data/synthetic_osd``).
        num_train, num_test: Number of scenes per split; scene ``i`` of the train split uses seed
            ``seed * 1_000_003 + i`` and the test split continues after the train seeds.
        height, width: Scene size.
        seed: Base seed.
        overwrite: Replace an existing set made with other settings.
        progress: Called as ``progress(done, total)`` after each written scene (not called when an existing set
            is reused), e.g. to drive a progress bar.
        scene_kwargs: Keyword arguments of :func:`make_sar_scene` (``looks``, ``p_land``, ``max_slicks``, ...);
            None: its defaults (the demo's set). Recorded in the settings only when given.

    Returns:
        ``root``.
    """
    import json
    import os
    import shutil

    from .label_codecs import encode_palette
    from .osd import OSDDataset

    settings = dict(num_train=num_train, num_test=num_test, height=height, width=width, seed=seed,
                    generator=GENERATOR_VERSION)
    if scene_kwargs:
        settings['scene_kwargs'] = dict(scene_kwargs)
    stamp = os.path.join(root, 'synthetic_settings.json')
    if os.path.isdir(root):
        if os.path.isfile(stamp):
            with open(stamp) as f:
                found = json.load(f)
            if found == settings:
                return root
            if isinstance(found, dict) and dict(found, generator=GENERATOR_VERSION) == settings:
                overwrite = True  # the same set drawn by an older generator: a cache of ours, redrawn
        if not overwrite:
            raise FileExistsError(f'{root} exists and was not made with {settings}; pass overwrite=True '
                                  '(--overwrite) to replace it')
    tmp = f'{root.rstrip(os.sep)}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    palette = OSDDataset.METAINFO['palette']
    index = 0
    for split, n in (('train', num_train), ('test', num_test)):
        for sub in ('images', 'labels', 'labels_1D'):
            os.makedirs(os.path.join(tmp, split, sub))
        for _ in range(n):
            image, label = make_sar_scene(seed * 1_000_003 + index, height, width, **(scene_kwargs or {}))
            name = f'img_{index:04d}'
            cv2.imwrite(os.path.join(tmp, split, 'images', name + '.jpg'), cv2.cvtColor(image, cv2.COLOR_GRAY2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(os.path.join(tmp, split, 'labels', name + '.png'), encode_palette(label, palette)[..., ::-1])
            cv2.imwrite(os.path.join(tmp, split, 'labels_1D', name + '.png'), label)
            index += 1
            if progress is not None:
                progress(index, num_train + num_test)
    with open(os.path.join(tmp, 'synthetic_settings.json'), 'w') as f:
        json.dump(settings, f, indent=1)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
    os.replace(tmp, root)
    return root
