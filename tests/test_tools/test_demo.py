"""The README's first command (`make demo` -> tools/demo.py): its terminal output (progress bars, final table), its
logs, its last phase (tools/inference.py on a synthetic georeferenced scene) and its error report."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _demo(tmp_path, *args):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, 'tools/demo.py', '--data-root', str(tmp_path / 'syn'),
                           '--work-dir', str(tmp_path / 'demo'), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.mark.timeout(600)
def test_demo_runs_and_reports(tmp_path):
    r = _demo(tmp_path, '--iters', '2')
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    for key in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc', 'IoU oil_spill', 'metrics JSON', 'overlays',
                '[1/4] generate data', '[2/4] train', '[3/4] test', '[4/4] segment a georeferenced scene',
                'georeferenced scene', 'oil-spill polygon(s)', 'km² in all', 'full logs'):
        assert key in r.stdout, key
    assert len(os.listdir(tmp_path / 'syn' / 'train' / 'images')) == 200
    # mmengine's config dump, environment and hook tables go to the logs, not to the terminal
    for noise in ('System environment', 'Config:', 'before_train:', 'Saving checkpoint'):
        assert noise not in r.stdout + r.stderr, noise
    train_log = (tmp_path / 'demo' / 'logs' / 'train.log').read_text()
    assert 'Config:' in train_log and 'Saving checkpoint at 2 iterations' in train_log
    assert 'Iter(test)' in (tmp_path / 'demo' / 'logs' / 'test.log').read_text()
    _check_scene(tmp_path / 'demo', r.stdout)


def _check_scene(work_dir, stdout):
    """The last phase: a float32 dB GeoTIFF in UTM 15N with 10 m pixels, segmented by tools/inference.py into an
    EPSG:4326 GeoJSON/GeoPackage, a quicklook and a class map on the scene's grid; every path is printed."""
    import pyogrio
    import rasterio
    from affine import Affine
    scene = work_dir / 'scene'
    tifs = sorted((scene / 'sigma0_db').glob('*.tif'))
    assert len(tifs) == 1
    stem = tifs[0].stem
    outs = dict(geojson=scene / 'polygons' / f'{stem}.geojson', gpkg=scene / 'polygons' / f'{stem}.gpkg',
                quicklook=scene / 'quicklooks' / f'{stem}.png', mask=scene / 'masks' / f'{stem}.tif')
    for path in [tifs[0], *outs.values()]:
        assert path.is_file() and str(path) in stdout, path
    expected = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 2990000.0)
    with rasterio.open(tifs[0]) as src:
        assert src.crs.is_projected and src.crs.to_epsg() == 32615
        assert src.transform == expected and src.dtypes[0] == 'float32'
        db = src.read(1)
    assert -30.0 <= db.min() and db.max() <= 0.0
    with rasterio.open(outs['mask']) as src:
        assert src.crs.to_epsg() == 32615 and src.transform == expected and src.shape == db.shape
    gj = json.loads(outs['geojson'].read_text())
    assert gj['type'] == 'FeatureCollection'
    for path in (outs['geojson'], outs['gpkg']):
        assert pyogrio.read_info(str(path))['crs'] == 'EPSG:4326'
    for f in gj['features']:  # lon/lat in the Gulf of Mexico, where the scene lies
        lon, lat = np.asarray(f['geometry']['coordinates'][0]).T
        assert (-92.1 < lon).all() and (lon < -91.9).all() and (26.9 < lat).all() and (lat < 27.1).all()
    summary = json.loads((scene / 'summary.json').read_text())
    oil = summary['images'][stem]['polygons']['oil_spill']
    assert f'{oil["count"]} oil-spill polygon(s), {oil["area_km2"]:.4f} km² in all' in stdout
    assert '--backscatter db' in (work_dir / 'logs' / 'scene.log').read_text()


def test_scene_geotiff_is_the_test_image_for_the_model(tmp_path):
    """The demo's GeoTIFF of sigma0 in dB maps back, through the inference tool's reader, to the very grey levels of
    the synthetic test image (the exact inverse of its dB window)."""
    import cv2
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    from demo import SCENE_CRS, write_scene_geotiff

    from projects.sar_oilspill.geo import open_scene
    grey = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    cv2.imwrite(str(tmp_path / 'img.png'), grey)
    db_range, transform = write_scene_geotiff(str(tmp_path / 'img.png'), str(tmp_path / 'scene.tif'))
    assert db_range == (-30.0, 0.0)
    scene = open_scene(str(tmp_path / 'scene.tif'), 'db', db_range)
    try:
        back, valid = scene.read(0, 3, 0, 256)
        assert scene.georef is not None and str(scene.src.crs) == SCENE_CRS and scene.src.transform == transform
    finally:
        scene.close()
    assert valid.all() and np.array_equal(back, grey)


def test_progress_pattern_reads_mmengine_and_tqdm():
    from projects.sar_oilspill.utils.tool_runs import PROGRESS, last_progress
    for text, want in (('Iter(train) [ 20/900]  lr: 1e-3', ('20', '900')),
                       ('[>>>>   ] 5/200, 3.1 task/s', ('5', '200')),
                       ('inference: 100%|##########| 1/1 [00:02<00:00,  2.1s/scene]', ('1', '1'))):
        m = PROGRESS.search(text)
        assert m and tuple(v for v in m.groups() if v is not None) == want, text
    assert last_progress('Iter(train) [ 10/90]\nIter(train) [ 20/90]\n') == (20, 90)
    assert last_progress('no counter here') is None


@pytest.mark.timeout(300)
def test_demo_failure_prints_the_error_and_the_log(tmp_path):
    r = _demo(tmp_path, '--iters', '2', '--config', 'configs/saross/no_such_config.py', '--no-scene')
    assert r.returncode != 0
    assert '[2/3] train FAILED' in r.stderr
    assert 'Traceback (most recent call last)' in r.stderr and 'no_such_config.py' in r.stderr
    assert osp.join('demo', 'logs', 'train.log') in r.stderr


def test_error_text_keeps_the_whole_traceback():
    from projects.sar_oilspill.utils.tool_runs import failure_text
    log = '\n'.join([f'noise {i}' for i in range(500)] + ['Traceback (most recent call last):'] +
                    [f'  frame {i}' for i in range(100)] + ['ValueError: boom'])
    text = failure_text(log)
    assert text.startswith('Traceback') and text.endswith('ValueError: boom') and 'frame 0' in text
    assert failure_text('a\nb\nc', max_lines=2) == 'b\nc'


def test_run_tool_failure_names_the_command_and_shows_this_run_only(tmp_path):
    """run_tool appends to its log; a failure shows this run's traceback in full, not an earlier run's output."""
    from projects.sar_oilspill.utils.tool_runs import run_tool
    script = tmp_path / 'tool.py'
    script.write_text('import sys\nprint("Iter(train) [ 1/2]", flush=True)\n'
                      'if len(sys.argv) > 1: raise ValueError("boom " + sys.argv[1])\n')
    log = str(tmp_path / 'logs' / 'tool.log')
    assert run_tool(str(script), [], log_path=log, progress='ok run') >= 0
    with pytest.raises(RuntimeError) as e:
        run_tool(str(script), ['x1'], log_path=log)
    msg = str(e.value)
    assert 'exit status 1' in msg and 'ValueError: boom x1' in msg and msg.count('Traceback') == 1
    assert str(script) in msg and log in msg
    assert open(log).read().count('$ ') == 2  # both runs logged, one after the other
