"""Per-slick polygons from a class map: one feature per 4-connected region of each reported class."""
from typing import Dict, List, Optional, Sequence

import numpy as np

FIELDS = ('class', 'area_m2', 'perimeter_m', 'centroid_lon', 'centroid_lat', 'mean_confidence', 'max_confidence',
          'pixels', 'scene', 'config', 'checkpoint_sha256')


def extract_polygons(label, georef, classes: Sequence[str], class_ids: Sequence[int], conf=None,
                     min_area_m2: float = 0.0, simplify_m: float = 0.0, extra: Optional[Dict] = None) -> List[Dict]:
    """Polygons of the regions of ``class_ids`` in ``label``.

    Args:
        label: uint8 ``(H, W)`` class map (other values, e.g. 255 = nodata, are never reported unless listed): an
            array, or an open single-band rasterio dataset without georeferencing (pixel coordinates), which is
            polygonised from disk line by line (GDAL) where it is non-zero, so it should hold 0 outside the
            regions to report (``class_ids`` may not contain 0 then).
        georef: :class:`~projects.sar_oilspill.geo.georef.Georef` of the scene.
        classes: Class names, indexed by label value.
        class_ids: Label values to report.
        conf: uint8 ``(H, W)`` confidence ``round(255 * p)`` of each pixel's class (mean/max per region): an
            array or an open rasterio dataset, read region by region.
        min_area_m2: Regions with a smaller area are dropped (0 keeps all).
        simplify_m: Douglas-Peucker tolerance in metres for the outline (0: exact pixel outlines). Areas,
            perimeters and centroids are always those of the region's pixels.
        extra: Properties added to every feature (``scene``, ``config``, ``checkpoint_sha256``).

    Returns:
        list of ``dict(geometry=shapely Polygon in EPSG:4326 lon/lat, properties=dict, pixel_geometry=the
        outline in pixel coordinates)``, in raster order.
    """
    import rasterio
    import rasterio.features
    import shapely
    from affine import Affine
    from shapely.geometry import shape
    from .writers import read_window
    if isinstance(label, np.ndarray):
        source = label = np.ascontiguousarray(label)
        mask = np.isin(label, np.asarray(class_ids, label.dtype))
        if not mask.any():
            return []
    else:
        if 0 in class_ids:
            raise ValueError('extract_polygons: a raster dataset is polygonised where it is non-zero, so class 0 '
                             'cannot be reported from one')
        source = mask = rasterio.band(label, 1)
    wanted = {int(k) for k in class_ids}
    px_m = georef.pixel_size_m()
    px_area = px_m * px_m
    tol_px = float(simplify_m) / px_m if simplify_m else 0.0
    feats = []
    for geom, value in rasterio.features.shapes(source, mask=mask, connectivity=4, transform=Affine.identity()):
        if int(value) not in wanted:
            continue
        g = shape(geom)
        npix = g.area  # pixel-space area: the region's pixel count (holes excluded)
        if min_area_m2 and npix * px_area < 0.5 * min_area_m2:  # pixel areas vary far less than 2x in a scene
            continue
        area, perim, ll = georef.measure(g)
        if area < min_area_m2:
            continue
        out_px = g
        if tol_px:
            out_px = shapely.simplify(g, tol_px, preserve_topology=True)
            ll = georef.measure(out_px)[2]
        c = g.centroid
        clon, clat = georef.lonlat(np.array([c.x]), np.array([c.y]))
        props = {'class': classes[int(value)], 'area_m2': area, 'perimeter_m': perim,
                 'centroid_lon': float(clon[0]), 'centroid_lat': float(clat[0]), 'pixels': int(round(npix))}
        if conf is not None:
            x0, y0, x1, y1 = (int(v) for v in g.bounds)
            inside = rasterio.features.rasterize([(geom, 1)], out_shape=(y1 - y0, x1 - x0),
                                                 transform=Affine.translation(x0, y0), dtype=np.uint8) > 0
            vals = read_window(conf, y0, y1, x0, x1)[inside].astype(np.float64) / 255.0
            props['mean_confidence'] = float(vals.mean()) if vals.size else None
            props['max_confidence'] = float(vals.max()) if vals.size else None
        else:
            props['mean_confidence'] = props['max_confidence'] = None
        props.update(extra or {})
        feats.append(dict(geometry=ll, properties=props, pixel_geometry=out_px))
    return feats


def write_vectors(features: List[Dict], path: str, driver: str, layer: Optional[str] = None) -> None:
    """Write features (EPSG:4326) to ``path`` with pyogrio (``GeoJSON`` as RFC 7946, or ``GPKG``)."""
    import pyogrio.raw
    import shapely
    geoms = np.array([shapely.to_wkb(f['geometry']) for f in features], dtype=object)
    field_data, fields = [], []
    for name in FIELDS:
        vals = [f['properties'].get(name) for f in features]
        if name in ('class', 'scene', 'config', 'checkpoint_sha256'):
            field_data.append(np.array(['' if v is None else str(v) for v in vals], dtype=object))
        elif name == 'pixels':
            field_data.append(np.array(vals, dtype=np.int64))
        else:
            field_data.append(np.array([np.nan if v is None else v for v in vals], dtype=np.float64))
        fields.append(name)
    opts = dict(layer_options={'RFC7946': 'YES'}) if driver == 'GeoJSON' else {}
    pyogrio.raw.write(path, geoms, field_data, fields, driver=driver, geometry_type='Polygon', crs='EPSG:4326',
                      layer=layer, promote_to_multi=False, **opts)
