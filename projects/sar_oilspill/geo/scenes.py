"""Readers of SAR scenes that are read block by block: GeoTIFFs of backscatter and Sentinel-1 GRD SAFE products.

The model was trained on 8-bit grey images. One rule maps backscatter to that range (:func:`to_model_input`):
sigma0 in dB is clipped to a window ``[lo, hi]`` (default :data:`DEFAULT_DB_RANGE`, ``--db-range``) and scaled
linearly to 0..255. Units of a GeoTIFF must be declared (``--backscatter``, or the :data:`UNIT_TAG` metadata tag
that ``tools/inference.py --save-input`` writes); only 8-bit GeoTIFFs default to grey levels (``dn``), as PNG/JPEG
images do. SAFE products are calibrated to sigma0 with their own calibration annotation (no thermal-noise
removal).
"""
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
import zipfile
from typing import Optional, Sequence, Tuple

import numpy as np

UNITS = ('db', 'linear', 'dn')
UNIT_TAG = 'SAR_OILSPILL_BACKSCATTER'
DEFAULT_DB_RANGE = (-30.0, 0.0)
UNIT_HELP = ('pass --backscatter db (sigma0 in decibels), --backscatter linear (sigma0 as linear power) or '
             '--backscatter dn (grey levels 0-255 scaled like the model\'s training images)')


class SceneError(ValueError):
    """A scene that cannot be read as asked (the message names the file and the option to pass)."""


def to_model_input(values: np.ndarray, valid: np.ndarray, unit: str, db_range: Sequence[float],
                   where: str = '') -> Tuple[np.ndarray, np.ndarray]:
    """Map backscatter to the model's 8-bit input.

    ``db``: ``grey = round(255 * clip((v - lo) / (hi - lo), 0, 1))``; ``linear``: the same on ``10 log10(v)``
    (values <= 0 become nodata); ``dn``: the values are grey levels already (must lie in 0..255).
    Nodata pixels (``~valid``, and non-finite values) are filled with the mean grey of the block's valid pixels, so
    that they add no edges; they are masked out of the results afterwards.

    Returns:
        ``(grey uint8 (h, w), valid bool (h, w))``.
    """
    values = np.asarray(values)
    valid = np.asarray(valid, bool)
    if values.dtype.kind == 'f':
        valid = valid & np.isfinite(values)
    if unit == 'dn':
        v = values[valid]
        if v.size and (v.min() < 0 or v.max() > 255):
            raise SceneError(f'{where}: --backscatter dn expects grey levels 0..255, found values '
                             f'{float(v.min()):g}..{float(v.max()):g}; calibrate to sigma0 and pass --backscatter '
                             'db or linear')
        grey = np.clip(np.round(np.where(valid, values, 0).astype(np.float32)), 0, 255).astype(np.uint8) \
            if values.dtype != np.uint8 else values.copy()
    else:
        lo, hi = (float(v) for v in db_range)
        x = values.astype(np.float32)
        if unit == 'linear':
            valid = valid & (x > 0)
            with np.errstate(divide='ignore', invalid='ignore'):
                x = 10.0 * np.log10(np.where(valid, x, 1.0))
        elif unit != 'db':
            raise SceneError(f'{where}: unknown backscatter unit {unit!r}; {UNIT_HELP}')
        grey = np.round(np.clip((np.where(valid, x, lo) - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)
    if not valid.all():
        grey[~valid] = int(round(float(grey[valid].mean()))) if valid.any() else 0
    return grey, valid


def model_input_to_db(grey: np.ndarray, db_range: Sequence[float] = DEFAULT_DB_RANGE) -> np.ndarray:
    """The inverse of :func:`to_model_input` for ``unit='db'``: sigma0 in dB (float32) that maps back to exactly
    the grey levels ``grey`` (uint8), ``lo + grey / 255 * (hi - lo)``. Used to turn an 8-bit image (e.g. a synthetic
    demo scene) into a backscatter GeoTIFF that the model sees pixel for pixel as that image."""
    lo, hi = (float(v) for v in db_range)
    return (lo + np.asarray(grey, np.float64) / 255.0 * (hi - lo)).astype(np.float32)


def _georef(height, width, crs, transform, gcps, gcp_crs):
    from .georef import Georef
    if crs is not None and transform is not None and not transform.is_identity:
        return Georef(height, width, crs, transform=transform)
    if gcps:
        return Georef(height, width, gcp_crs, gcps=gcps)
    return None


class GeoTiffScene:
    """A (Geo)TIFF of backscatter, any dtype, read by windows.

    Args:
        path: The file.
        unit: ``db``/``linear``/``dn`` or None (then the file's :data:`UNIT_TAG`; 8-bit files default to ``dn``;
            anything else without a declaration is refused).
        db_range: dB window of :func:`to_model_input`.
        band: 1-based band index (default 1). 8-bit files of 3+ bands with no ``band`` are read as RGB.
    """

    kind = 'geotiff'

    def __init__(self, path: str, unit: Optional[str] = None, db_range=DEFAULT_DB_RANGE, band: Optional[int] = None):
        import rasterio
        from rasterio.errors import RasterioIOError
        self.path, self.db_range = path, tuple(float(v) for v in db_range)
        try:
            self.src = rasterio.open(path)
        except RasterioIOError as e:
            raise SceneError(f'{path}: not a readable raster ({e})') from e
        src = self.src
        if band is not None and not 1 <= band <= src.count:
            raise SceneError(f'{path}: --band {band}, but the file has {src.count} band(s)')
        self.band = band or 1
        dtype = np.dtype(src.dtypes[self.band - 1])
        self.dtype = dtype.name
        tag = (src.tags().get(UNIT_TAG) or src.tags(self.band).get(UNIT_TAG) or '').lower() or None
        if tag is not None and tag not in UNITS:
            raise SceneError(f'{path}: tag {UNIT_TAG}={tag!r} is not one of {UNITS}')
        if unit is not None and tag is not None and unit != tag:
            raise SceneError(f'{path}: the file declares {UNIT_TAG}={tag}, but --backscatter {unit} was passed')
        if unit is None and tag is None:
            if dtype != np.uint8:
                raise SceneError(f'{path}: {dtype.name} pixel values with no declared unit; {UNIT_HELP}')
            unit, self.unit_from = 'dn', '8-bit default'
        else:
            self.unit_from = '--backscatter' if unit is not None else f'tag {UNIT_TAG}'
        self.unit = unit or tag
        self.rgb = self.unit == 'dn' and dtype == np.uint8 and src.count >= 3 and band is None
        self.height, self.width = src.height, src.width
        gcps, gcp_crs = src.gcps
        self.georef = _georef(src.height, src.width, src.crs, src.transform, gcps, gcp_crs)
        self.name = _stem(path)

    @property
    def shape(self):
        return (self.height, self.width)

    def read(self, y0, y1, x0, x1, out_shape=None) -> Tuple[np.ndarray, np.ndarray]:
        """Model input (uint8 ``(h, w)``, or ``(h, w, 3)`` BGR for RGB files) and validity of a window."""
        from rasterio.enums import Resampling
        from rasterio.windows import Window
        win = Window(x0, y0, x1 - x0, y1 - y0)
        kw = dict(window=win, out_shape=out_shape, resampling=Resampling.nearest)
        if self.rgb:
            rgb = self.src.read([1, 2, 3], **kw)
            valid = self.src.read_masks(1, **kw) > 0
            return np.ascontiguousarray(rgb[::-1].transpose(1, 2, 0)), valid
        values = self.src.read(self.band, **kw)
        valid = self.src.read_masks(self.band, **kw) > 0
        return to_model_input(values, valid, self.unit, self.db_range, self.path)

    def describe(self) -> dict:
        return dict(kind=self.kind, dtype=self.dtype, band=self.band, unit=self.unit, unit_from=self.unit_from,
                    rgb=self.rgb)

    def close(self):
        self.src.close()


class SafeScene:
    """A Sentinel-1 GRD product (``.SAFE`` folder or its ``.zip``), one polarisation, calibrated to sigma0.

    ``sigma0 = DN² / A²`` with ``A`` the ``sigmaNought`` LUT of ``annotation/calibration/calibration-*.xml``
    interpolated bilinearly over its (line, pixel) grid (ESA's Sentinel-1 radiometric calibration). DN = 0 is
    nodata (the product's borders). Georeferenced from the GCPs of the measurement TIFF (or, without them, the
    annotation's geolocation grid).
    """

    kind = 'safe'
    unit, unit_from = 'linear', 'SAFE calibration (sigmaNought)'

    def __init__(self, path: str, polarisation: str = 'vv', db_range=DEFAULT_DB_RANGE):
        import rasterio
        from rasterio.errors import RasterioIOError
        self.path, self.db_range, self.pol = path, tuple(float(v) for v in db_range), polarisation.lower()
        self.name = _stem(path)
        self._zip = None
        if osp.isdir(path):
            names = [osp.relpath(osp.join(d, f), path).replace(os.sep, '/') for d, _, fs in os.walk(path) for f in fs]
            self._read = lambda n: open(osp.join(path, n), 'rb').read()
            self._gdal = lambda n: osp.join(path, n)
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise SceneError(f'{path}: not a readable zip of a SAFE product ({e})') from e
            names = self._zip.namelist()
            self._read = self._zip.read
            self._gdal = lambda n: '/vsizip/' + osp.abspath(path) + '/' + n
        if not any(n.endswith('manifest.safe') for n in names):
            raise SceneError(f'{path}: no manifest.safe; expected a Sentinel-1 .SAFE folder or zip')
        meas = [n for n in names if re.search(r'(^|/)measurement/[^/]+\.tiff?$', n, re.I)]
        pols = sorted({m.group(1).lower() for n in meas
                       for m in [re.search(r'-(hh|hv|vv|vh)-', osp.basename(n), re.I)] if m})
        if meas and not any('-grd' in osp.basename(n).lower() for n in meas):
            raise SceneError(f'{path}: not a GRD product (measurement files {meas[:2]}); only GRD is supported')
        mine = [n for n in meas if f'-{self.pol}-' in osp.basename(n).lower()]
        if len(mine) != 1:
            raise SceneError(f'{path}: no single {self.pol.upper()} measurement (found polarisations '
                             f'{[p.upper() for p in pols]}); pass --polarisation with one of them')
        cal = [n for n in names if re.search(r'(^|/)annotation/calibration/calibration-[^/]*-' + self.pol
                                             + r'-[^/]*\.xml$', n, re.I)]
        if len(cal) != 1:
            raise SceneError(f'{path}: no calibration annotation for {self.pol.upper()} '
                             '(annotation/calibration/calibration-*.xml)')
        self.measurement, self.calibration = mine[0], cal[0]
        self._lines, self._pixels, self._sigma = _read_calibration(self._read(cal[0]), f'{path}:{cal[0]}')
        try:
            self.src = rasterio.open(self._gdal(mine[0]))
        except RasterioIOError as e:
            raise SceneError(f'{path}: cannot read {mine[0]} ({e})') from e
        self.height, self.width = self.src.height, self.src.width
        gcps, gcp_crs = self.src.gcps
        if not gcps:
            ann = [n for n in names if re.search(r'(^|/)annotation/[^/]*-' + self.pol + r'-[^/]*\.xml$', n, re.I)]
            if ann:
                gcps = _annotation_gcps(self._read(ann[0]))
                from rasterio.crs import CRS
                gcp_crs = CRS.from_epsg(4326)
        if not gcps:
            raise SceneError(f'{path}: no GCPs in {mine[0]} nor a geolocation grid in the annotation')
        self.georef = _georef(self.height, self.width, None, None, gcps, gcp_crs)
        self.rgb = False

    @property
    def shape(self):
        return (self.height, self.width)

    def sigma_lut(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``sigmaNought`` at rows x cols (1-D pixel indices) -> ``(len(rows), len(cols))``, bilinear."""
        per_vec = np.stack([np.interp(cols, p, s) for p, s in zip(self._pixels, self._sigma)])
        lines = self._lines
        i = np.clip(np.searchsorted(lines, rows, 'right') - 1, 0, len(lines) - 2)
        t = np.clip((rows - lines[i]) / (lines[i + 1] - lines[i]), 0.0, 1.0)[:, None]
        return (1 - t) * per_vec[i] + t * per_vec[i + 1]

    def read(self, y0, y1, x0, x1, out_shape=None) -> Tuple[np.ndarray, np.ndarray]:
        from rasterio.enums import Resampling
        from rasterio.windows import Window
        dn = self.src.read(1, window=Window(x0, y0, x1 - x0, y1 - y0), out_shape=out_shape,
                           resampling=Resampling.nearest).astype(np.float64)
        h, w = dn.shape
        rows = y0 + (np.arange(h) + 0.5) * (y1 - y0) / h - 0.5
        cols = x0 + (np.arange(w) + 0.5) * (x1 - x0) / w - 0.5
        lut = self.sigma_lut(rows, cols)
        sigma0 = dn * dn / (lut * lut)
        return to_model_input(sigma0, dn > 0, 'linear', self.db_range, self.path)

    def describe(self) -> dict:
        return dict(kind=self.kind, polarisation=self.pol.upper(), measurement=self.measurement,
                    calibration=self.calibration, unit='sigma0 (linear, from sigmaNought LUT)',
                    unit_from=self.unit_from)

    def close(self):
        self.src.close()
        if self._zip is not None:
            self._zip.close()


def _read_calibration(data: bytes, where: str):
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise SceneError(f'{where}: not valid XML ({e})') from e
    lines, pixels, sigma = [], [], []
    for vec in root.iter('calibrationVector'):
        try:
            lines.append(int(vec.findtext('line')))
            pixels.append(np.array(vec.findtext('pixel').split(), np.float64))
            sigma.append(np.array(vec.findtext('sigmaNought').split(), np.float64))
        except (TypeError, ValueError, AttributeError) as e:
            raise SceneError(f'{where}: calibrationVector {len(lines)} lacks line/pixel/sigmaNought ({e})') from e
        if len(pixels[-1]) != len(sigma[-1]) or len(pixels[-1]) < 2:
            raise SceneError(f'{where}: calibrationVector at line {lines[-1]} has {len(pixels[-1])} pixels and '
                             f'{len(sigma[-1])} sigmaNought values')
    if len(lines) < 2 or np.any(np.diff(lines) <= 0):
        raise SceneError(f'{where}: expected >= 2 calibration vectors with increasing lines, got lines {lines[:5]}')
    if min(s.min() for s in sigma) <= 0:
        raise SceneError(f'{where}: sigmaNought values must be positive')
    return np.array(lines, np.float64), pixels, sigma


def _annotation_gcps(data: bytes):
    from rasterio.control import GroundControlPoint
    root = ET.fromstring(data)
    gcps = []
    for i, p in enumerate(root.iter('geolocationGridPoint')):
        gcps.append(GroundControlPoint(row=float(p.findtext('line')), col=float(p.findtext('pixel')),
                                       x=float(p.findtext('longitude')), y=float(p.findtext('latitude')),
                                       z=float(p.findtext('height') or 0), id=str(i + 1)))
    return gcps


def _stem(path: str) -> str:
    base = osp.basename(osp.normpath(path))
    for ext in ('.safe.zip', '.zip', '.safe', '.tiff', '.tif'):
        if base.lower().endswith(ext):
            return base[:-len(ext)]
    return osp.splitext(base)[0]


def is_safe(path: str) -> bool:
    """A ``.SAFE`` folder or a ``.zip`` (of one)."""
    return (osp.isdir(path) and osp.isfile(osp.join(path, 'manifest.safe'))) or path.lower().endswith('.zip')


def open_scene(path: str, unit: Optional[str] = None, db_range=DEFAULT_DB_RANGE, band: Optional[int] = None,
               polarisation: str = 'vv'):
    """A :class:`SafeScene` (``.SAFE`` folder or ``.zip``) or a :class:`GeoTiffScene` (``.tif``/``.tiff``)."""
    lo, hi = (float(v) for v in db_range)
    if not hi > lo:
        raise SceneError(f'--db-range {lo:g} {hi:g}: the upper bound must exceed the lower one')
    if is_safe(path):
        return SafeScene(path, polarisation, db_range)
    return GeoTiffScene(path, unit, db_range, band)
