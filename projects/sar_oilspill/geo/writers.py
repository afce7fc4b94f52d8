"""GeoTIFF and quicklook outputs of a scene, written block by block where the data come block by block."""
from typing import Dict, List, Optional, Sequence

import numpy as np

NODATA = 255
STRIP_ROWS = 512


def geotiff_profile(scene, count: int, dtype: str, nodata=None, photometric: Optional[str] = None) -> Dict:
    """Tiled, DEFLATE-compressed GeoTIFF with the scene's CRS and transform (GCP scenes: see :func:`set_georef`)."""
    prof = dict(driver='GTiff', height=scene.height, width=scene.width, count=count, dtype=dtype, tiled=True,
                blockxsize=512, blockysize=512, compress='deflate', predictor=2 if dtype == 'uint8' else 1,
                BIGTIFF='IF_SAFER')
    if nodata is not None:
        prof['nodata'] = nodata
    if photometric:
        prof['photometric'] = photometric
    g = getattr(scene, 'georef', None)
    if g is not None and g.kind == 'affine':
        prof.update(crs=g.crs, transform=g.transform)
    return prof


def set_georef(dst, scene) -> None:
    """GCP scenes: copy the GCPs (an affine scene has them in its profile)."""
    g = getattr(scene, 'georef', None)
    if g is not None and g.kind == 'gcps':
        dst.gcps = (g.gcps, g.crs)


def read_window(src, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows ``y0:y1`` and columns ``x0:x1`` of a single-band raster: an ``(H, W)`` array, or a rasterio dataset
    (read from disk, so a scene's class map need not be held in memory)."""
    if isinstance(src, np.ndarray):
        return src[y0:y1, x0:x1]
    return src.read(1, window=((y0, y1), (x0, x1)))


def _size(src):
    return tuple(src.shape[:2]) if isinstance(src, np.ndarray) else (src.height, src.width)


class BandWriter:
    """A uint8 GeoTIFF written block by block, the ``label_out`` / ``conf_out`` / ``probs_out`` of
    :func:`~projects.sar_oilspill.apis.predict_tiled`: ``w[rows, cols] = (H, W) block`` for one band,
    ``w[:, rows, cols] = (K, H, W) block`` for several. ``georef=False`` leaves out the CRS, transform and GCPs
    (a scratch raster whose polygons come out in pixel coordinates). Use as a context manager or call ``close``."""

    def __init__(self, path: str, scene, count: int = 1, nodata=None, tags: Optional[Dict] = None,
                 georef: bool = True):
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
        prof = geotiff_profile(scene, count, 'uint8', nodata=nodata)
        if not georef:
            for k in ('crs', 'transform'):
                prof.pop(k, None)
        self.shape = (scene.height, scene.width) if count == 1 else (count, scene.height, scene.width)
        with warnings.catch_warnings():  # scratch rasters and scenes without georeferencing are meant so
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            self.dst = rasterio.open(path, 'w', **prof)
        if georef:
            set_georef(self.dst, scene)
        if tags:
            self.dst.update_tags(**{k: str(v) for k, v in tags.items()})

    def __setitem__(self, key, value):
        rows, cols = key[-2:]
        value = np.asarray(value)
        if value.dtype != np.uint8:
            raise TypeError(f'BandWriter: expected uint8 blocks, got {value.dtype}')
        self.dst.write(value if value.ndim == 3 else value[None], window=((rows.start, rows.stop),
                                                                          (cols.start, cols.stop)))

    def close(self):
        self.dst.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ClassMapWriter(BandWriter):
    """The scene's class map (``masks/<name>.tif``): uint8 class indices, nodata 255, the palette as colour table,
    the run's settings as tags; written block by block."""

    def __init__(self, path: str, scene, classes: Sequence[str], palette, tags: Dict):
        super().__init__(path, scene, 1, nodata=NODATA, tags=tags)
        self.dst.write_colormap(1, {k: tuple(int(c) for c in palette[k]) + (255, ) for k in range(len(classes))})
        self.dst.update_tags(1, classes=','.join(classes), nodata_meaning='no SAR data (or land, for models '
                             'without a land class)')
        self.dst.set_band_description(1, 'class index')


class ProbsWriter(BandWriter):
    """``probs_out`` of :func:`~projects.sar_oilspill.apis.predict_tiled` into a K-band uint8 GeoTIFF
    (``round(255 * p)``; band scale 1/255 gives p)."""

    def __init__(self, path: str, scene, classes: Sequence[str], tags: Dict):
        super().__init__(path, scene, len(classes), tags=tags)
        self.dst.scales = [1 / 255.0] * len(classes)
        for k, name in enumerate(classes):
            self.dst.set_band_description(k + 1, f'P({name})')

    def __setitem__(self, key, value):
        super().__setitem__(key, np.round(np.asarray(value, np.float32) * 255).astype(np.uint8))


def write_overlay_and_input(scene, label, palette, opacity: float, overlay_path: Optional[str],
                            input_path: Optional[str], input_tags: Dict) -> None:
    """In strips of rows: the RGB overlay GeoTIFF (classes over the model's input; nodata black) and/or the model's
    8-bit input as a GeoTIFF tagged ``dn`` (re-usable as an input without ``--backscatter``). ``label``: the class
    map, an array or an open rasterio dataset (see :func:`read_window`)."""
    import rasterio
    from ..visualization.grid import overlay_labels
    from .scenes import UNIT_TAG
    over = inp = None
    try:
        if overlay_path:
            over = rasterio.open(overlay_path, 'w', **geotiff_profile(scene, 3, 'uint8', photometric='RGB'))
            set_georef(over, scene)
        if input_path:
            inp = rasterio.open(input_path, 'w', **geotiff_profile(scene, 1, 'uint8'))
            set_georef(inp, scene)
            inp.update_tags(**{UNIT_TAG: 'dn'}, **{k: str(v) for k, v in input_tags.items()})
        for y in range(0, scene.height, STRIP_ROWS):
            y1 = min(y + STRIP_ROWS, scene.height)
            grey, valid = scene.read(y, y1, 0, scene.width)
            win = ((y, y1), (0, scene.width))
            if inp is not None:
                inp.write(grey[None] if grey.ndim == 2 else grey[..., 0][None], window=win)
                inp.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=win)
            if over is not None:
                lab = read_window(label, y, y1, 0, scene.width)
                rgb = grey[..., ::-1] if grey.ndim == 3 else grey
                o = overlay_labels(rgb, np.where(lab == NODATA, 0, lab), palette, alpha=opacity)
                o[lab == NODATA] = 0
                over.write(o.transpose(2, 0, 1), window=win)
    finally:
        for d in (over, inp):
            if d is not None:
                d.close()


def quicklook(scene, label, palette, features: List[Dict], classes: Sequence[str],
              max_size: int = 2048, opacity: float = 0.35) -> np.ndarray:
    """A downsampled BGR picture of the scene (long side ``max_size``): classes tinted, nodata black, the polygons'
    outlines in their class colours. Polygon pixel outlines come from the features' ``pixel_geometry``. ``label``:
    the class map, an array or an open rasterio dataset, read in strips of rows."""
    import cv2
    from ..visualization.grid import overlay_labels
    scale = min(1.0, max_size / max(scene.height, scene.width))
    qh, qw = max(1, int(round(scene.height * scale))), max(1, int(round(scene.width * scale)))
    grey, valid = scene.read(0, scene.height, 0, scene.width, out_shape=(qh, qw))
    rows = np.minimum((np.arange(qh) + 0.5) * scene.height / qh, scene.height - 1).astype(int)
    cols = np.minimum((np.arange(qw) + 0.5) * scene.width / qw, scene.width - 1).astype(int)
    lab = np.empty((qh, qw), np.uint8)
    height = _size(label)[0]
    for y in range(0, height, STRIP_ROWS):  # nearest pixel centres, strip by strip
        y1 = min(y + STRIP_ROWS, height)
        sel = np.flatnonzero((rows >= y) & (rows < y1))
        if sel.size:
            lab[sel] = read_window(label, y, y1, 0, scene.width)[rows[sel] - y][:, cols]
    rgb = grey[..., ::-1] if grey.ndim == 3 else grey
    img = overlay_labels(rgb, np.where(lab == NODATA, 0, lab), palette, alpha=opacity)
    img[lab == NODATA] = 0
    img = np.ascontiguousarray(img[..., ::-1])  # BGR for cv2
    sx, sy = qw / scene.width, qh / scene.height
    name_to_id = {c: k for k, c in enumerate(classes)}
    for f in features:
        g = f.get('pixel_geometry')
        if g is None:
            continue
        colour = palette[name_to_id[f['properties']['class']]]
        bgr = (int(colour[2]), int(colour[1]), int(colour[0]))
        if bgr == (0, 0, 0):
            bgr = (255, 255, 255)
        for ring in [g.exterior] + list(g.interiors):
            pts = np.asarray(ring.coords)
            pts = np.round(np.stack([pts[:, 0] * sx, pts[:, 1] * sy], 1) * 4).astype(np.int32)
            cv2.polylines(img, [pts], True, bgr, 1, cv2.LINE_AA, shift=2)
    return img
