"""Pixel <-> ground geometry of a scene: an affine transform in a CRS, or ground control points (GCPs).

Pixel coordinates are GDAL's: ``(col, row)`` = ``(x, y)`` with ``(0, 0)`` the top-left corner of the top-left pixel,
so pixel ``(r, c)`` covers ``[c, c + 1] x [r, r + 1]`` and its centre is ``(c + 0.5, r + 0.5)``.
"""
from typing import Optional, Sequence, Tuple

import numpy as np


class Georef:
    """Where the pixels of a ``height x width`` scene lie on the ground.

    Args:
        height, width: Scene size in pixels.
        crs: ``rasterio.crs.CRS`` of ``transform`` (affine scenes) or of the GCPs.
        transform: ``affine.Affine`` pixel -> CRS coordinates, or None with ``gcps``.
        gcps: ``rasterio.control.GroundControlPoint`` list (``row``, ``col``, ``x`` = lon, ``y`` = lat). A full
            rectilinear grid of GCPs (Sentinel-1's geolocation grid) is interpolated bilinearly, as ESA SNAP does
            with tie-point grids; any other set by GDAL's thin-plate spline.

    Attributes:
        kind: ``'affine'`` or ``'gcps'``.
        projected: True for an affine transform in a projected CRS (areas are then planar, in the CRS's unit
            converted to metres); otherwise areas and perimeters are geodesic on the CRS's ellipsoid.
    """

    def __init__(self, height: int, width: int, crs, transform=None, gcps: Optional[Sequence] = None):
        from pyproj import CRS, Transformer
        if crs is None:
            raise ValueError('Georef: a CRS is needed')
        self.height, self.width = int(height), int(width)
        self.crs = crs
        self._pcrs = CRS.from_user_input(crs.to_wkt() if hasattr(crs, 'to_wkt') else crs)
        self.transform, self.gcps = transform, list(gcps or [])
        if transform is None and not self.gcps:
            raise ValueError('Georef: needs an affine transform or GCPs')
        self.kind = 'affine' if transform is not None else 'gcps'
        self.projected = self.kind == 'affine' and self._pcrs.is_projected
        if self.kind == 'gcps' and self._pcrs.is_projected:
            raise ValueError(f'Georef: GCPs in a projected CRS ({self._pcrs.name}) are not supported; '
                             'expected longitudes/latitudes')
        self._to_lonlat = Transformer.from_crs(self._pcrs, CRS.from_epsg(4326), always_xy=True)
        self._to_ll_is_identity = self._pcrs.equals(CRS.from_epsg(4326)) or (
            self._pcrs.is_geographic and self._pcrs.to_epsg() == 4326)
        geo = self._pcrs.geodetic_crs if not self._pcrs.is_geographic else self._pcrs
        self.geod = geo.get_geod()
        self.unit_m = 1.0
        if self.projected:
            self.unit_m = float(self._pcrs.axis_info[0].unit_conversion_factor)
        if self.kind == 'gcps':
            self._init_gcps()

    # -- GCP interpolation -------------------------------------------------------------------------------------
    def _init_gcps(self):
        rows = np.array([g.row for g in self.gcps], np.float64)
        cols = np.array([g.col for g in self.gcps], np.float64)
        lon = np.array([g.x for g in self.gcps], np.float64)
        lat = np.array([g.y for g in self.gcps], np.float64)
        self._wrap = bool(lon.max() - lon.min() > 180)  # crosses the antimeridian: interpolate unwrapped
        if self._wrap:
            lon = np.where(lon < 0, lon + 360, lon)
        ur, uc = np.unique(rows), np.unique(cols)
        self._grid = None
        if len(ur) >= 2 and len(uc) >= 2 and len(ur) * len(uc) == len(self.gcps):
            ir, ic = np.searchsorted(ur, rows), np.searchsorted(uc, cols)
            glon = np.full((len(ur), len(uc)), np.nan)
            glat = np.full_like(glon, np.nan)
            glon[ir, ic], glat[ir, ic] = lon, lat
            if np.isfinite(glon).all():
                self._grid = (ur, uc, glon, glat)
        if self._grid is None:
            from rasterio.transform import GCPTransformer
            self._tps = GCPTransformer(self.gcps, tps=True)

    def _gcp_lonlat(self, cols: np.ndarray, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if self._grid is not None:
            ur, uc, glon, glat = self._grid
            lon, lat = _bilinear(ur, uc, glon, rows, cols), _bilinear(ur, uc, glat, rows, cols)
        else:
            lon, lat = self._tps.xy(rows.ravel(), cols.ravel(), offset='ul')
            lon, lat = np.asarray(lon).reshape(rows.shape), np.asarray(lat).reshape(rows.shape)
        if self._wrap:
            lon = (lon + 180.0) % 360.0 - 180.0
        return lon, lat

    # -- mappings ----------------------------------------------------------------------------------------------
    def pixel_to_crs(self, cols, rows):
        """Affine scenes: pixel coordinates -> CRS coordinates (x, y)."""
        t = self.transform
        cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
        return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f

    def lonlat(self, cols, rows) -> Tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (any shape) -> longitude, latitude (EPSG:4326 axis order lon, lat)."""
        cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
        if self.kind == 'gcps':
            lon, lat = self._gcp_lonlat(cols, rows)
            if not self._to_ll_is_identity:
                lon, lat = self._to_lonlat.transform(lon, lat)
            return np.asarray(lon), np.asarray(lat)
        x, y = self.pixel_to_crs(cols, rows)
        if self._to_ll_is_identity:
            return x, y
        lon, lat = self._to_lonlat.transform(x, y)
        return np.asarray(lon), np.asarray(lat)

    def native_lonlat(self, cols, rows):
        """Pixel coordinates -> coordinates on the CRS's own ellipsoid (geographic scenes: the CRS's lon/lat)."""
        if self.kind == 'gcps':
            return self._gcp_lonlat(np.asarray(cols, np.float64), np.asarray(rows, np.float64))
        return self.pixel_to_crs(cols, rows)

    def lonlat_block(self, y0: int, y1: int, x0: int, x1: int, step: int = 16) -> Tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude of the pixel centres of rows ``y0:y1``, columns ``x0:x1``, each ``(h, w)``.

        An axis-aligned lon/lat grid is computed exactly; otherwise the mapping is evaluated every ``step`` pixels
        and interpolated bilinearly in between (the mapping is smooth: the error is far below a pixel).
        """
        rows = np.arange(y0, y1, dtype=np.float64) + 0.5
        cols = np.arange(x0, x1, dtype=np.float64) + 0.5
        t = self.transform
        if self.kind == 'affine' and self._to_ll_is_identity and t.b == 0 and t.d == 0:
            lon, lat = self.pixel_to_crs(cols, np.zeros_like(cols))[0], self.pixel_to_crs(np.zeros_like(rows), rows)[1]
            return np.broadcast_to(lon[None, :], (len(rows), len(cols))), np.broadcast_to(lat[:, None],
                                                                                        (len(rows), len(cols)))
        if len(rows) <= step + 1 or len(cols) <= step + 1:
            return self.lonlat(cols[None, :].repeat(len(rows), 0), rows[:, None].repeat(len(cols), 1))
        cr = np.unique(np.append(rows[::step], rows[-1]))
        cc = np.unique(np.append(cols[::step], cols[-1]))
        glon, glat = self.lonlat(cc[None, :].repeat(len(cr), 0), cr[:, None].repeat(len(cc), 1))
        if glon.max() - glon.min() > 180:  # antimeridian inside the block
            glon = np.where(glon < 0, glon + 360, glon)
            lon = (_bilinear(cr, cc, glon, rows[:, None], cols[None, :]) + 180.0) % 360.0 - 180.0
        else:
            lon = _bilinear(cr, cc, glon, rows[:, None], cols[None, :])
        return lon, _bilinear(cr, cc, glat, rows[:, None], cols[None, :])

    def lonlat_bounds(self, margin_deg: float = 0.05) -> Tuple[float, float, float, float]:
        """(lon_min, lat_min, lon_max, lat_max) of the scene, from a 65 x 65 grid of points over it, widened."""
        r = np.linspace(0, self.height, 65)
        c = np.linspace(0, self.width, 65)
        lon, lat = self.lonlat(c[None, :].repeat(65, 0), r[:, None].repeat(65, 1))
        return (float(lon.min()) - margin_deg, max(-90.0, float(lat.min()) - margin_deg),
                float(lon.max()) + margin_deg, min(90.0, float(lat.max()) + margin_deg))

    def pixel_size_m(self) -> float:
        """Ground size of a pixel at the scene centre, the square root of its area in m²."""
        r, c = self.height / 2.0, self.width / 2.0
        if self.projected:
            t = self.transform
            return float(np.sqrt(abs(t.a * t.e - t.b * t.d)) * self.unit_m)
        lon, lat = self.native_lonlat(np.array([c, c + 1, c + 1, c]), np.array([r, r, r + 1, r + 1]))
        area, _ = self.geod.polygon_area_perimeter(lon, lat)
        return float(np.sqrt(abs(area)))

    # -- geometry ----------------------------------------------------------------------------------------------
    def measure(self, geom_px):
        """Area (m²), perimeter (m) and the EPSG:4326 outline of a polygon given in pixel coordinates.

        Projected CRSs: planar area and length in the CRS. Otherwise geodesic on the CRS's ellipsoid, the outline
        divided into pixel-long edges first (each pixel's edges are then exactly those of the pixel's own cell, so
        a region's area is the sum of its pixels' areas however large it is).
        """
        import shapely
        from shapely.geometry.polygon import orient
        if self.projected:
            g = shapely.transform(geom_px, lambda xy: np.stack(self.pixel_to_crs(xy[:, 0], xy[:, 1]), 1))
            area, perim = g.area * self.unit_m ** 2, g.length * self.unit_m
            ll = shapely.transform(geom_px, lambda xy: np.stack(self.lonlat(xy[:, 0], xy[:, 1]), 1))
            return float(area), float(perim), ll
        dense = shapely.segmentize(geom_px, 1.0)
        nat = orient(shapely.transform(dense, lambda xy: np.stack(self.native_lonlat(xy[:, 0], xy[:, 1]), 1)), 1.0)
        area, perim = self.geod.geometry_area_perimeter(nat)
        if self._to_ll_is_identity:
            ll = nat
        else:
            ll = shapely.transform(dense, lambda xy: np.stack(self.lonlat(xy[:, 0], xy[:, 1]), 1))
        return abs(float(area)), float(perim), ll

    def describe(self) -> dict:
        return dict(kind=self.kind, crs=self._pcrs.to_string(), projected=bool(self.projected),
                    transform=list(self.transform)[:6] if self.transform is not None else None,
                    gcps=len(self.gcps), interpolation=None if self.kind == 'affine' else (
                        'bilinear grid' if self._grid is not None else 'thin-plate spline'))


def _bilinear(gr: np.ndarray, gc: np.ndarray, values: np.ndarray, rows, cols) -> np.ndarray:
    """Bilinear interpolation of ``values`` given on the rectilinear grid ``gr x gc`` at (rows, cols) (broadcast);
    linear extrapolation outside the grid."""
    rows, cols = np.broadcast_arrays(np.asarray(rows, np.float64), np.asarray(cols, np.float64))
    if len(gr) == 1 or len(gc) == 1:
        raise ValueError('_bilinear: the grid needs at least 2 x 2 nodes')
    i = np.clip(np.searchsorted(gr, rows, 'right') - 1, 0, len(gr) - 2)
    j = np.clip(np.searchsorted(gc, cols, 'right') - 1, 0, len(gc) - 2)
    ty = (rows - gr[i]) / (gr[i + 1] - gr[i])
    tx = (cols - gc[j]) / (gc[j + 1] - gc[j])
    v00, v01, v10, v11 = values[i, j], values[i, j + 1], values[i + 1, j], values[i + 1, j + 1]
    return (1 - ty) * ((1 - tx) * v00 + tx * v01) + ty * ((1 - tx) * v10 + tx * v11)
