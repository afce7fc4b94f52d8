"""Land masks for georeferenced scenes: the offline global mask of ``global-land-mask``, or a user file.

Every mask answers ``mask.block(georef, y0, y1, x0, x1) -> bool (h, w)`` (True = land) for the pixel centres of
a block, so a whole scene is never held at once.
"""
import os.path as osp
import zipfile

import numpy as np


class GlobalLandMask:
    """``global-land-mask``'s GLOBE-derived 30 arc-second (about 1 km) land/ocean grid, offline.

    The package itself loads the whole grid (21600 x 43200 bytes, 933 MB) at import; here only the rows of the
    scene's latitude range are decompressed from its ``.npz`` (streamed), and pixels are looked up exactly as
    ``global_land_mask.globe.is_land`` does (most lakes count as land).
    """

    def __init__(self, lat_min: float, lat_max: float):
        import importlib.util
        spec = importlib.util.find_spec('global_land_mask')
        if spec is None:
            raise ImportError('--land-mask global needs the package global-land-mask (pip install global-land-mask), '
                              'or pass --land-mask none / --land-mask PATH')
        npz = osp.join(osp.dirname(spec.origin), 'globe_combined_mask_compressed.npz')
        with np.load(npz) as f:
            self.lat, self.lon = f['lat'], f['lon']
        r0, r1 = sorted(int(v) for v in self._row(np.array([lat_max, lat_min])))
        self.r0 = r0
        with zipfile.ZipFile(npz) as z, z.open('mask.npy') as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(f))
            if fortran or dtype != np.bool_ or len(shape) != 2:
                raise ValueError(f'{npz}: unexpected land mask layout {shape} {dtype}')
            row_bytes = shape[1]
            skip = r0 * row_bytes
            while skip:
                skip -= len(f.read(min(skip, 1 << 24)))
            data = f.read((r1 - r0 + 1) * row_bytes)
        self.ocean = np.frombuffer(data, np.bool_).reshape(r1 - r0 + 1, shape[1])

    def _row(self, lat):
        lat = np.clip(np.asarray(lat, np.float64), self.lat.min(), self.lat.max())
        return ((lat - self.lat[0]) / (self.lat[1] - self.lat[0])).astype(int)

    def _col(self, lon):
        lon = np.clip(np.asarray(lon, np.float64), self.lon.min(), self.lon.max())
        return ((lon - self.lon[0]) / (self.lon[1] - self.lon[0])).astype(int)

    def is_land(self, lon, lat) -> np.ndarray:
        return ~self.ocean[self._row(lat) - self.r0, self._col(lon)]

    def block(self, georef, y0, y1, x0, x1) -> np.ndarray:
        lon, lat = georef.lonlat_block(y0, y1, x0, x1)
        return self.is_land(lon, lat)

    @classmethod
    def for_scene(cls, georef):
        _, lat_min, _, lat_max = georef.lonlat_bounds()
        return cls(lat_min, lat_max)


class VectorLandMask:
    """Land polygons from any vector file GDAL reads (GeoPackage, shapefile, GeoJSON, ...), in any CRS."""

    def __init__(self, path: str):
        import pyogrio.raw
        import shapely
        from pyproj import CRS, Transformer
        meta, _, wkb, _ = pyogrio.raw.read(path, read_geometry=True, columns=[])
        if wkb is None or not len(wkb):
            raise ValueError(f'--land-mask {path}: no geometries in this file')
        geoms = shapely.from_wkb(wkb)
        geoms = geoms[~shapely.is_empty(geoms)] if len(geoms) else geoms
        polys = shapely.get_type_id(geoms)
        if not np.isin(polys, (3, 6)).all():
            raise ValueError(f'--land-mask {path}: expected (multi)polygons of land, found geometry types '
                             f'{sorted(set(shapely.get_type_id(geoms).tolist()))}')
        crs = meta.get('crs')
        if not crs:
            raise ValueError(f'--land-mask {path}: the file declares no CRS')
        geom = shapely.union_all(shapely.make_valid(geoms))
        src = CRS.from_user_input(crs)
        if not src.equals(CRS.from_epsg(4326)):
            tr = Transformer.from_crs(src, CRS.from_epsg(4326), always_xy=True)
            geom = shapely.transform(geom, lambda xy: np.stack(tr.transform(xy[:, 0], xy[:, 1]), 1))
        shapely.prepare(geom)
        self.geom = geom

    def block(self, georef, y0, y1, x0, x1) -> np.ndarray:
        import shapely
        lon, lat = georef.lonlat_block(y0, y1, x0, x1)
        box = shapely.box(lon.min(), lat.min(), lon.max(), lat.max())
        if not self.geom.intersects(box):
            return np.zeros(lon.shape, bool)
        if self.geom.contains(box):
            return np.ones(lon.shape, bool)
        return shapely.contains_xy(self.geom, np.ascontiguousarray(lon), np.ascontiguousarray(lat))


class RasterLandMask:
    """A land raster in any CRS GDAL reads: non-zero valid pixels are land; looked up at the nearest pixel."""

    def __init__(self, path: str):
        import rasterio
        from pyproj import CRS, Transformer
        with rasterio.open(path) as src:
            if src.crs is None:
                raise ValueError(f'--land-mask {path}: the raster has no CRS')
            self.values = src.read(1)
            self.valid = src.read_masks(1) > 0
            self.inv = ~src.transform
            self.tr = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_user_input(src.crs.to_wkt()),
                                           always_xy=True)

    def block(self, georef, y0, y1, x0, x1) -> np.ndarray:
        lon, lat = georef.lonlat_block(y0, y1, x0, x1)
        x, y = self.tr.transform(lon, lat)
        a = self.inv
        c = np.floor(a.a * x + a.b * y + a.c).astype(np.int64)
        r = np.floor(a.d * x + a.e * y + a.f).astype(np.int64)
        inside = (r >= 0) & (r < self.values.shape[0]) & (c >= 0) & (c < self.values.shape[1])
        rc, cc = np.where(inside, r, 0), np.where(inside, c, 0)
        return inside & (self.values[rc, cc] != 0) & self.valid[rc, cc]


RASTER_EXTS = ('.tif', '.tiff', '.vrt', '.img', '.nc', '.jp2')


def open_land_mask(spec: str, georef):
    """``'none'`` -> None; ``'global'`` -> :class:`GlobalLandMask` for the scene; a path -> vector or raster mask."""
    if spec == 'none':
        return None
    if spec == 'global':
        return GlobalLandMask.for_scene(georef)
    if not osp.exists(spec):
        raise FileNotFoundError(f'--land-mask {spec}: no such file (expected global, none or a vector/raster file)')
    if spec.lower().endswith(RASTER_EXTS):
        return RasterLandMask(spec)
    return VectorLandMask(spec)
