"""Georeferenced scenes in, georeferenced class maps and oil-spill polygons out (rasterio, pyproj, shapely,
pyogrio, global-land-mask). Nothing here is imported by ``projects.sar_oilspill`` itself: GDAL loads only when a
scene is read."""
from .georef import Georef
from .landmask import GlobalLandMask, RasterLandMask, VectorLandMask, open_land_mask
from .scenes import (DEFAULT_DB_RANGE, UNIT_TAG, UNITS, GeoTiffScene, SafeScene, SceneError, is_safe,
                     model_input_to_db, open_scene, to_model_input)
from .vectors import extract_polygons, write_vectors

__all__ = ['Georef', 'GlobalLandMask', 'RasterLandMask', 'VectorLandMask', 'open_land_mask', 'DEFAULT_DB_RANGE',
           'UNIT_TAG', 'UNITS', 'GeoTiffScene', 'SafeScene', 'SceneError', 'is_safe', 'open_scene', 'to_model_input',
           'model_input_to_db', 'extract_polygons', 'write_vectors']
