"""Georeferenced scenes in (GeoTIFFs of each dtype, a minimal Sentinel-1 GRD SAFE), georeferenced outputs out.

Every raster here is built by the test; expected values come from independent computations (pixel counts x pixel
areas, pyproj.Geod on each pixel's cell, global_land_mask's own lookup, the calibration formula with scipy)."""
import importlib.util
import json
import os
import os.path as osp
import shutil
import zipfile

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip('rasterio')
import pyogrio.raw  # noqa: E402
import shapely  # noqa: E402
from affine import Affine  # noqa: E402
from pyproj import Geod  # noqa: E402
from rasterio.control import GroundControlPoint  # noqa: E402
from rasterio.crs import CRS  # noqa: E402

from projects.sar_oilspill.geo import (GeoTiffScene, Georef, GlobalLandMask, SafeScene, SceneError,  # noqa: E402
                                       extract_polygons, to_model_input)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
_spec = importlib.util.spec_from_file_location('sar_inference_tool_geo', osp.join(ROOT, 'tools', 'inference.py'))
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)
UTM = CRS.from_epsg(32631)
UTM_T = Affine(10.0, 0, 500000.0, 0, -10.0, 5400000.0)
GEO_T = Affine(0.001, 0, 3.0, 0, -0.001, 60.0)
CLASSES = ('sea_surface', 'oil_spill', 'look_alike', 'ship', 'land')


@pytest.fixture(scope='module')
def checkpoint(tiny_osd_checkpoint):
    return tiny_osd_checkpoint


def _blobs(h, w, seed=0):
    """A class map with blobs of every class, holes and single pixels."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((h, w), np.uint8)
    for _ in range(12):
        y, x = rng.integers(0, h), rng.integers(0, w)
        ry, rx = rng.integers(2, 9, 2)
        yy, xx = np.ogrid[:h, :w]
        lab[((yy - y) / ry) ** 2 + ((xx - x) / rx) ** 2 <= 1] = rng.integers(1, 4)
    lab[rng.random((h, w)) < 0.02] = 1
    lab[h // 2, 3:9] = 0  # a hole line
    return lab


def _write_tif(path, data, crs=None, transform=None, nodata=None, gcps=None, tags=None):
    data = np.asarray(data)
    prof = dict(driver='GTiff', height=data.shape[0], width=data.shape[1], count=1, dtype=data.dtype.name)
    if crs is not None:
        prof.update(crs=crs, transform=transform)
    if nodata is not None:
        prof['nodata'] = nodata
    with rasterio.open(path, 'w', **prof) as dst:
        dst.write(data[None])
        if gcps:
            dst.gcps = (gcps, CRS.from_epsg(4326))
        if tags:
            dst.update_tags(**tags)
    return str(path)


# -- polygons: areas against independent computations --------------------------------------------------------------
def test_polygon_areas_utm_equal_pixel_counts_times_pixel_area():
    lab = _blobs(60, 80)
    g = Georef(60, 80, UTM, transform=UTM_T)
    feats = extract_polygons(lab, g, CLASSES, [1, 2, 3], conf=np.full(lab.shape, 200, np.uint8))
    for k in (1, 2, 3):
        got = sum(f['properties']['area_m2'] for f in feats if f['properties']['class'] == CLASSES[k])
        assert (lab == k).sum() > 0
        assert got == pytest.approx((lab == k).sum() * 100.0, rel=1e-9)
    from scipy import ndimage
    n_regions = sum(ndimage.label(lab == k)[1] for k in (1, 2, 3))  # 4-connected by default
    assert len(feats) == n_regions
    assert all(f['properties']['mean_confidence'] == pytest.approx(200 / 255) for f in feats)
    # the filter: regions under 500 m² (5 pixels) go, the others stay
    big = extract_polygons(lab, g, CLASSES, [1, 2, 3], min_area_m2=500)
    assert len(big) == sum(f['properties']['pixels'] >= 5 for f in feats) and 0 < len(big) < len(feats)
    # simplified outlines keep the pixel areas
    simp = extract_polygons(lab, g, CLASSES, [1, 2, 3], min_area_m2=500, simplify_m=15)
    assert [f['properties']['area_m2'] for f in simp] == [f['properties']['area_m2'] for f in big]
    assert sum(len(shapely.get_coordinates(f['geometry'])) for f in simp) < \
        sum(len(shapely.get_coordinates(f['geometry'])) for f in big)


def test_polygons_from_a_raster_on_disk_equal_those_from_the_array(tmp_path):
    """The whole-scene tool polygonises a scratch GeoTIFF (the reported classes, 0 elsewhere) line by line from
    disk, with the confidence read region by region: the same features as from arrays in memory."""
    from types import SimpleNamespace

    from projects.sar_oilspill.geo.writers import BandWriter
    lab = _blobs(60, 80, seed=5)
    lab[0:5, 0:7] = 4  # land, not reported
    conf = np.random.default_rng(2).integers(1, 256, lab.shape).astype(np.uint8)
    g = Georef(60, 80, UTM, transform=UTM_T)
    want = extract_polygons(lab, g, CLASSES, [1, 3], conf=conf, simplify_m=12)
    assert len(want) > 5 and {f['properties']['class'] for f in want} == {'oil_spill', 'ship'}
    scene = SimpleNamespace(height=60, width=80, georef=None)
    keep = np.where(np.isin(lab, [1, 3]), lab, 0).astype(np.uint8)
    for name, arr in (('regions.tif', keep), ('conf.tif', conf)):
        with BandWriter(str(tmp_path / name), scene, georef=False) as w:
            for y in range(0, 60, 16):  # in blocks, as predict_tiled writes
                for x in range(0, 80, 24):
                    w[slice(y, min(y + 16, 60)), slice(x, min(x + 24, 80))] = arr[y:y + 16, x:x + 24]
    with rasterio.open(tmp_path / 'regions.tif') as r, rasterio.open(tmp_path / 'conf.tif') as c:
        assert np.array_equal(r.read(1), keep)
        got = extract_polygons(r, g, CLASSES, [1, 3], conf=c, simplify_m=12)
        with pytest.raises(ValueError, match='class 0'):
            extract_polygons(r, g, CLASSES, [0, 1])
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a['properties'] == b['properties']
        assert a['geometry'].equals_exact(b['geometry'], 0) and a['pixel_geometry'].equals(b['pixel_geometry'])


def _cell_areas(lon_edges, lat_edges):
    geod = Geod(ellps='WGS84')
    out = np.zeros((len(lat_edges) - 1, len(lon_edges) - 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            a, _ = geod.polygon_area_perimeter([lon_edges[j], lon_edges[j + 1], lon_edges[j + 1], lon_edges[j]],
                                               [lat_edges[i], lat_edges[i], lat_edges[i + 1], lat_edges[i + 1]])
            out[i, j] = abs(a)
    return out


def test_polygon_areas_geographic_and_gcps_are_sums_of_geodesic_pixel_cells():
    h, w = 30, 40
    lab = _blobs(h, w, seed=3)
    cells = _cell_areas(3.0 + 0.001 * np.arange(w + 1), 60.0 - 0.001 * np.arange(h + 1))
    g = Georef(h, w, CRS.from_epsg(4326), transform=GEO_T)
    gcps = [GroundControlPoint(row=r, col=c, x=3.0 + 0.001 * c, y=60.0 - 0.001 * r)
            for r in (0, 10, 20, 30) for c in (0, 20, 40)]
    gg = Georef(h, w, CRS.from_epsg(4326), gcps=gcps)
    for georef in (g, gg):
        feats = extract_polygons(lab, georef, CLASSES, [1, 2, 3])
        for k in (1, 2, 3):
            got = sum(f['properties']['area_m2'] for f in feats if f['properties']['class'] == CLASSES[k])
            assert got == pytest.approx(cells[lab == k].sum(), rel=1e-7)
        f = max(feats, key=lambda f: f['properties']['pixels'])
        minx, miny, maxx, maxy = f['geometry'].bounds
        assert 3.0 - 1e-9 <= minx < maxx <= 3.04 + 1e-9 and 59.97 - 1e-9 <= miny < maxy <= 60.0 + 1e-9
    assert abs(g.pixel_size_m() - np.sqrt(cells[h // 2, w // 2])) < 0.01


# -- input scaling and unit declarations -------------------------------------------------------------------------
def test_backscatter_rule_against_formula():
    db = np.array([[-40.0, -30.0, -14.2], [-0.7, 5.0, np.nan]], np.float32)
    grey, valid = to_model_input(db, np.ones(db.shape, bool), 'db', (-30, 0))
    want = np.round(np.clip((np.nan_to_num(db) + 30) / 30, 0, 1) * 255)
    assert valid.tolist() == [[True] * 3, [True, True, False]]
    assert grey[valid].tolist() == want[valid].tolist()
    lin = 10 ** (db / 10)
    lin[0, 0] = 0.0  # no power: nodata
    g2, v2 = to_model_input(lin, np.ones(db.shape, bool), 'linear', (-30, 0))
    assert not v2[0, 0] and g2[v2].tolist() == want[v2].tolist()
    with pytest.raises(SceneError, match='--backscatter db or linear'):
        to_model_input(np.array([[300]], np.uint16), np.ones((1, 1), bool), 'dn', (-30, 0), 'x.tif')


@pytest.mark.parametrize('dtype', ['uint16', 'int16', 'float32', 'float64'])
def test_undeclared_units_refused(tmp_path, dtype):
    path = _write_tif(tmp_path / 'a.tif', np.ones((8, 8), dtype), UTM, UTM_T)
    with pytest.raises(SceneError, match=f'a.tif: {dtype} .*--backscatter db .*--backscatter linear'):
        GeoTiffScene(path)
    assert GeoTiffScene(path, 'linear').unit == 'linear'
    tagged = _write_tif(tmp_path / 'b.tif', np.ones((8, 8), dtype), UTM, UTM_T,
                        tags={'SAR_OILSPILL_BACKSCATTER': 'db'})
    assert GeoTiffScene(tagged).unit == 'db'
    with pytest.raises(SceneError, match='declares SAR_OILSPILL_BACKSCATTER=db, but --backscatter linear'):
        GeoTiffScene(tagged, 'linear')
    assert GeoTiffScene(_write_tif(tmp_path / 'c.tif', np.ones((8, 8), np.uint8), UTM, UTM_T)).unit == 'dn'


def test_global_land_mask_matches_the_package(tmp_path):
    globe = pytest.importorskip('global_land_mask.globe')
    # a 0.01° grid over the coast of the Netherlands / North Sea
    h, w = 120, 160
    t = Affine(0.01, 0, 3.5, 0, -0.01, 53.2)
    g = Georef(h, w, CRS.from_epsg(4326), transform=t)
    mask = GlobalLandMask.for_scene(g).block(g, 0, h, 0, w)
    lon = 3.5 + 0.01 * (np.arange(w) + 0.5)
    lat = 53.2 - 0.01 * (np.arange(h) + 0.5)
    want = globe.is_land(lat[:, None].repeat(w, 1), lon[None, :].repeat(h, 0))
    assert 0.1 < want.mean() < 0.9 and np.array_equal(mask, want)
    # the same ground in UTM: the interpolated pixel positions agree except on a few boundary pixels
    from pyproj import Transformer
    x0, y0 = Transformer.from_crs(4326, 32631, always_xy=True).transform(3.5, 53.2)
    gu = Georef(h, w, UTM, transform=Affine(500.0, 0, x0, 0, -500.0, y0))
    lon_u, lat_u = gu.lonlat(np.arange(w)[None, :] + 0.5 + np.zeros((h, 1)), np.arange(h)[:, None] + 0.5
                             + np.zeros((1, w)))
    got = GlobalLandMask.for_scene(gu).block(gu, 0, h, 0, w)
    assert (got == globe.is_land(lat_u, lon_u)).mean() > 0.999


# -- the CLI on GeoTIFFs ------------------------------------------------------------------------------------------
def _scene_db(h=96, w=128, seed=0):
    """sigma0 in dB: sea around -15 dB, dark slicks around -25 dB, a bright ship."""
    rng = np.random.default_rng(seed)
    db = -15 + 1.5 * rng.standard_normal((h, w))
    yy, xx = np.ogrid[:h, :w]
    db[((yy - 40) / 12) ** 2 + ((xx - 60) / 30) ** 2 <= 1] -= 10
    db[70:73, 20:24] = 2
    return db.astype(np.float32)


def test_cli_geotiffs_each_dtype_roundtrip_areas_land_nodata(checkpoint, tmp_path):
    h, w = 96, 128
    db = _scene_db(h, w)
    grey_want = np.round(np.clip((db + 30) / 30, 0, 1) * 255).astype(np.uint8)
    scenes = tmp_path / 'scenes'
    scenes.mkdir()
    db_nd = db.copy()
    db_nd[:, :6] = -9999  # a nodata border
    _write_tif(scenes / 'utm_db.tif', db_nd, UTM, UTM_T, nodata=-9999)
    lin = (10 ** (db / 10)).astype(np.float32)
    lin[:, :6] = 0
    _write_tif(scenes / 'utm_linear.tif', lin, UTM, UTM_T, nodata=0)
    out = str(tmp_path / 'out')
    # land: a polygon over the right quarter of the scene, in another CRS than the scene's (EPSG:4326)
    from pyproj import Transformer
    to_ll = Transformer.from_crs(32631, 4326, always_xy=True)
    xs, ys = [UTM_T.c + 10 * 100, UTM_T.c + 10 * 200, UTM_T.c + 10 * 200, UTM_T.c + 10 * 100], \
        [UTM_T.f + 10, UTM_T.f + 10, UTM_T.f - 10 * 200, UTM_T.f - 10 * 200]
    lon, lat = to_ll.transform(xs, ys)
    land_poly = shapely.Polygon(zip(lon, lat))
    land_path = str(tmp_path / 'land.geojson')
    pyogrio.raw.write(land_path, np.array([shapely.to_wkb(land_poly)], dtype=object), [], [], driver='GeoJSON',
                      geometry_type='Polygon', crs='EPSG:4326')
    common = [CONFIG, checkpoint, '--out-dir', out, '--min-area-m2', '0', '--simplify-m', '0', '--land-mask',
              land_path, '--tile', '64', '64', '--tile-margin', '16', '--save-input']
    summary = _tool.main([CONFIG, checkpoint, str(scenes / 'utm_db.tif')] + common[2:] + ['--backscatter', 'db'])
    name = 'utm_db'
    with rasterio.open(osp.join(out, 'masks', name + '.tif')) as m:
        assert m.crs == UTM and m.transform == UTM_T and m.nodata == 255 and m.profile['tiled']
        assert m.profile['compress'].lower() == 'deflate'
        mask = m.read(1)
    # nodata border masked, land (pixel centres inside the polygon) is the land class, the rest a model class
    cx = UTM_T.c + 10 * (np.arange(w) + 0.5)
    cy = UTM_T.f - 10 * (np.arange(h) + 0.5)
    lon_c, lat_c = to_ll.transform(cx[None, :].repeat(h, 0), cy[:, None].repeat(w, 1))
    land_want = shapely.contains_xy(land_poly, lon_c, lat_c)
    assert 0.1 < land_want.mean() < 0.5
    assert (mask[:, :6] == 255).all()
    assert np.array_equal(mask[:, 6:] == 4, land_want[:, 6:])
    assert (mask[:, 6:][~land_want[:, 6:]] < 4).all()
    rec = summary['images'][name]
    assert rec['nodata_pixels'] == h * 6 and rec['land_pixels'] == int(land_want[:, 6:].sum())
    # the model's input: the dB rule, written as an input tagged "dn"
    with rasterio.open(osp.join(out, 'inputs', name + '.tif')) as i:
        assert i.tags()['SAR_OILSPILL_BACKSCATTER'] == 'dn' and i.transform == UTM_T
        assert np.array_equal(i.read(1)[:, 6:], grey_want[:, 6:]) and not i.read_masks(1)[:, :6].any()
    # polygons: EPSG:4326, one per region, areas sum to pixel count x 100 m²
    meta, _, geoms, fields = pyogrio.raw.read(osp.join(out, 'polygons', name + '.geojson'))
    assert 'WGS 84' in meta['crs'] or '4326' in meta['crs']
    assert list(meta['fields'][:7]) == ['class', 'area_m2', 'perimeter_m', 'centroid_lon', 'centroid_lat',
                                        'mean_confidence', 'max_confidence']
    props = dict(zip(meta['fields'], fields))
    for k in (1, 2, 3):
        sel = props['class'] == CLASSES[k]
        assert props['area_m2'][sel].sum() == pytest.approx((mask == k).sum() * 100.0, rel=1e-9)
    assert len(geoms) > 0 and set(props['scene']) == {name}
    assert set(props['checkpoint_sha256']) == {summary['settings']['checkpoint_sha256']}
    assert ((props['mean_confidence'] > 0) & (props['mean_confidence'] <= props['max_confidence'])
            & (props['max_confidence'] <= 1)).all()
    gmeta, _, ggeoms, _ = pyogrio.raw.read(osp.join(out, 'polygons', name + '.gpkg'))
    assert len(ggeoms) == len(geoms)
    # streamed from disk, the same features as from the class map in memory (confidence aside: not kept here)
    ref = extract_polygons(mask, Georef(h, w, UTM, transform=UTM_T), CLASSES, [1, 2, 3])
    assert [f['properties']['area_m2'] for f in ref] == list(props['area_m2'])
    assert [f['properties']['class'] for f in ref] == list(props['class'])
    assert not [n for n in os.listdir(out) if n.startswith('.scratch')]  # scratch rasters removed
    assert osp.isfile(osp.join(out, 'quicklooks', name + '.png'))
    with rasterio.open(osp.join(out, 'overlays', name + '.tif')) as o:
        assert o.count == 3 and o.transform == UTM_T

    # the same scene as linear sigma0 gives the same class map; a scene whose unit tag contradicts --backscatter
    # fails alone, the run goes on and exits non-zero naming it
    out2 = str(tmp_path / 'out2')
    bad = _write_tif(scenes / 'undeclared.tif', db, UTM, UTM_T, tags={'SAR_OILSPILL_BACKSCATTER': 'db'})
    with pytest.raises(SystemExit, match=r'(?s)1 of 2 input\(s\) failed.*undeclared.tif: .*--backscatter linear'):
        _tool.main([CONFIG, checkpoint, str(scenes / 'utm_linear.tif'), bad, '--out-dir', out2, '--min-area-m2',
                    '0', '--simplify-m', '0', '--land-mask', land_path, '--tile', '64', '64', '--tile-margin', '16',
                    '--backscatter', 'linear'])
    with rasterio.open(osp.join(out2, 'masks', 'utm_linear.tif')) as m2:
        diff = m2.read(1) != mask
    assert diff.mean() < 0.01  # float32 linear -> dB rounding can move a grey level by one
    saved = json.load(open(osp.join(out2, 'summary.json')))
    assert list(saved['failed']) == ['undeclared'] and 'utm_linear' in saved['images']
    assert not [n for n in os.listdir(out2) if n.startswith('.scratch')]

    # resume: the same settings skip, other settings or another checkpoint are refused, --overwrite recomputes
    run = [CONFIG, checkpoint, str(scenes / 'utm_db.tif')] + common[2:] + ['--backscatter', 'db']
    assert _tool.main(run)['images'][name] == rec
    with pytest.raises(SystemExit, match=r'db_range: \[-30.0, 0.0\] there, \[-25.0, 0.0\] now'):
        _tool.main(run + ['--db-range', '-25', '0'])
    other = str(tmp_path / 'other.pth')
    sd = torch.load(checkpoint, weights_only=False)
    k0 = next(iter(sd['state_dict']))
    sd['state_dict'][k0] = sd['state_dict'][k0] + 1
    torch.save(sd, other)
    with pytest.raises(SystemExit, match='checkpoint_sha256'):
        _tool.main([CONFIG, other] + run[2:])
    same_copy = str(tmp_path / 'copy.pth')
    shutil.copy(checkpoint, same_copy)
    assert _tool.main([CONFIG, same_copy] + run[2:])['images'][name] == rec  # same content, other path
    again = _tool.main([CONFIG, other] + run[2:] + ['--overwrite'])
    assert again['settings']['checkpoint_sha256'] != summary['settings']['checkpoint_sha256']
    # the model input written by --save-input goes back in without a declaration and gives the same masks
    out3 = str(tmp_path / 'out3')
    _tool.main([CONFIG, checkpoint, osp.join(out, 'inputs', name + '.tif'), '--out-dir', out3, '--min-area-m2', '0',
                '--land-mask', land_path, '--tile', '64', '64', '--tile-margin', '16'])
    with rasterio.open(osp.join(out3, 'masks', name + '.tif')) as m3:
        assert np.array_equal(m3.read(1), mask)


def test_cli_geographic_uint16_dn_and_probs(checkpoint, tmp_path):
    h, w = 40, 56
    grey = np.random.default_rng(1).integers(0, 256, (h, w)).astype(np.uint16)
    path = _write_tif(tmp_path / 'geo16.tif', grey, CRS.from_epsg(4326), GEO_T)
    out = str(tmp_path / 'o')
    with pytest.raises(SystemExit, match='geo16.tif: uint16 pixel values with no declared unit'):
        _tool.main([CONFIG, checkpoint, path, '--out-dir', out, '--land-mask', 'none'])
    s = _tool.main([CONFIG, checkpoint, path, '--out-dir', str(tmp_path / 'o2'), '--land-mask', 'none',
                    '--backscatter', 'dn', '--save-probs', '--min-area-m2', '0'])
    with rasterio.open(str(tmp_path / 'o2' / 'masks' / 'geo16.tif')) as m, \
            rasterio.open(str(tmp_path / 'o2' / 'probs' / 'geo16.tif')) as p:
        assert m.crs == CRS.from_epsg(4326) and m.transform == GEO_T
        probs = p.read().astype(np.float32) / 255
        assert p.count == 5 and p.transform == GEO_T
        assert (probs.argmax(0) == m.read(1)).mean() > 0.97  # uint8 quantisation ties
    cells = _cell_areas(3.0 + 0.001 * np.arange(w + 1), 60.0 - 0.001 * np.arange(h + 1))
    rec = s['images']['geo16']
    assert rec['pixel_size_m'] == pytest.approx(np.sqrt(cells[h // 2, w // 2]), rel=1e-6)


# -- a minimal Sentinel-1 GRD SAFE product -------------------------------------------------------------------------
CAL_LINES, CAL_PIXELS = (0, 30, 64), (0, 40, 80, 95)


def _sigma_lut_values():
    return np.array([[500.0, 520.0, 540.0, 560.0], [505.0, 525.0, 545.0, 565.0], [510.0, 530.0, 550.0, 570.0]])


def _make_safe(root, h=64, w=96, pols=('vv', ), seed=0):
    """manifest.safe, measurement/*.tiff (uint16 DN with a GCP grid), annotation/calibration/calibration-*.xml."""
    safe = root / 'S1A_IW_GRDH_1SDV_20240101T000000_20240101T000025_000001_000001_ABCD.SAFE'
    (safe / 'measurement').mkdir(parents=True)
    (safe / 'annotation' / 'calibration').mkdir(parents=True)
    (safe / 'manifest.safe').write_text('<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"/>')
    rng = np.random.default_rng(seed)
    dn = rng.integers(20, 300, (h, w)).astype(np.uint16)
    dn[:, :5] = 0  # the product's no-data border
    gcps = [GroundControlPoint(row=r, col=c, x=2.0 + 0.0002 * c + 0.00001 * r, y=54.0 - 0.0001 * r, z=0.0)
            for r in (0, 32, 64) for c in (0, 48, 96)]
    lut = _sigma_lut_values()
    for pol in pols:
        stem = f's1a-iw-grd-{pol}-20240101t000000-20240101t000025-000001-000001-001'
        _write_tif(safe / 'measurement' / f'{stem}.tiff', dn, gcps=gcps)
        vecs = ''.join(
            f'<calibrationVector><azimuthTime>2024-01-01T00:00:00</azimuthTime><line>{ln}</line>'
            f'<pixel count="4">{" ".join(map(str, CAL_PIXELS))}</pixel>'
            f'<sigmaNought count="4">{" ".join(f"{v:.6e}" for v in lut[i])}</sigmaNought>'
            f'<betaNought count="4">1 1 1 1</betaNought><gamma count="4">1 1 1 1</gamma>'
            f'<dn count="4">1 1 1 1</dn></calibrationVector>' for i, ln in enumerate(CAL_LINES))
        (safe / 'annotation' / 'calibration' / f'calibration-{stem}.xml').write_text(
            f'<?xml version="1.0"?><calibration><calibrationVectorList count="3">{vecs}</calibrationVectorList>'
            '</calibration>')
    return safe, dn, gcps


def test_safe_calibration_and_georeference(tmp_path):
    from scipy.interpolate import RegularGridInterpolator
    safe, dn, gcps = _make_safe(tmp_path)
    scene = SafeScene(str(safe), 'vv', (-30, 0))
    h, w = dn.shape
    lut = RegularGridInterpolator((CAL_LINES, CAL_PIXELS), _sigma_lut_values())
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    a = lut(np.stack([rr.ravel(), cc.ravel()], 1)).reshape(h, w)
    sigma0 = dn.astype(np.float64) ** 2 / a ** 2
    with np.errstate(divide='ignore'):
        want = np.round(np.clip((10 * np.log10(sigma0) + 30) / 30, 0, 1) * 255)
    grey, valid = scene.read(0, h, 0, w)
    assert np.array_equal(valid, dn > 0)
    assert np.abs(grey[valid].astype(int) - want[valid]).max() <= 1 and (grey[valid] == want[valid]).mean() > 0.99
    # the GCP grid is interpolated bilinearly: exact for this (bilinear) ground mapping
    lon, lat = scene.georef.lonlat(np.array([10.5, 77.25]), np.array([3.5, 50.0]))
    np.testing.assert_allclose(lon, 2.0 + 0.0002 * np.array([10.5, 77.25]) + 0.00001 * np.array([3.5, 50.0]),
                               atol=1e-12)
    np.testing.assert_allclose(lat, 54.0 - 0.0001 * np.array([3.5, 50.0]), atol=1e-12)
    scene.close()
    with pytest.raises(SceneError, match=r"no single VH measurement \(found polarisations \['VV'\]\); pass "
                       '--polarisation'):
        SafeScene(str(safe), 'vh')


def test_cli_safe_zip_and_folder(checkpoint, tmp_path):
    safe, dn, gcps = _make_safe(tmp_path / 'prod', pols=('vv', 'vh'))
    zpath = tmp_path / 'in' / (safe.name[:-5] + '.zip')
    zpath.parent.mkdir()
    with zipfile.ZipFile(zpath, 'w') as z:
        for d, _, fs in os.walk(safe):
            for f in fs:
                full = osp.join(d, f)
                z.write(full, osp.join(safe.name, osp.relpath(full, safe)))
    bad = tmp_path / 'in' / 'broken.zip'
    bad.write_bytes(b'not a zip')
    out = str(tmp_path / 'out')
    with pytest.raises(SystemExit, match=r'(?s)1 of 2 input\(s\) failed.*broken.zip: .*not a readable zip'):
        _tool.main([CONFIG, checkpoint, str(tmp_path / 'in'), '--out-dir', out, '--land-mask', 'none',
                    '--min-area-m2', '0', '--polarisation', 'vh'])
    name = safe.name[:-5]
    with rasterio.open(osp.join(out, 'masks', name + '.tif')) as m:
        got, gcrs = m.gcps
        mask = m.read(1)
    assert gcrs == CRS.from_epsg(4326) and [(g.row, g.col, g.x, g.y) for g in got] == \
        [(g.row, g.col, g.x, g.y) for g in gcps]
    assert (mask[:, :5] == 255).all() and (mask[:, 5:] < 5).all()
    meta, _, geoms, fields = pyogrio.raw.read(osp.join(out, 'polygons', name + '.gpkg'))
    props = dict(zip(meta['fields'], fields))
    # geodesic areas on the GCP mapping: the sum of each pixel's cell
    g = Georef(*dn.shape, CRS.from_epsg(4326), gcps=gcps)
    geod = Geod(ellps='WGS84')
    for k in (1, 2, 3):
        rows, cols = np.nonzero(mask == k)
        want = 0.0
        for r, c in zip(rows, cols):
            lo, la = g.lonlat(np.array([c, c + 1, c + 1, c]), np.array([r, r, r + 1, r + 1]))
            want += abs(geod.polygon_area_perimeter(lo, la)[0])
        assert props['area_m2'][props['class'] == CLASSES[k]].sum() == pytest.approx(want, rel=1e-7)
    assert (mask[:, 5:] > 0).any() and len(geoms) > 0
    # the unzipped folder is read the same way
    out2 = str(tmp_path / 'out2')
    _tool.main([CONFIG, checkpoint, str(safe), '--out-dir', out2, '--land-mask', 'none', '--min-area-m2', '0',
                '--polarisation', 'vh'])
    with rasterio.open(osp.join(out2, 'masks', name + '.tif')) as m2:
        assert np.array_equal(m2.read(1), mask)
