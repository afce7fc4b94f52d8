"""tools/inference.py: class maps, overlays and areas for images without labels (whole or sliding window)."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
_spec = importlib.util.spec_from_file_location('sar_inference_tool', osp.join(ROOT, 'tools', 'inference.py'))
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)


@pytest.fixture(scope='module')
def checkpoint(tiny_osd_checkpoint):
    return tiny_osd_checkpoint


def test_inference_whole_and_sliding(synthetic_osd, checkpoint, tmp_path, capsys):
    images = osp.join(synthetic_osd, 'test', 'images')
    names = sorted(osp.splitext(n)[0] for n in os.listdir(images))
    out = str(tmp_path / 'whole')
    opts = ['--out-dir', out, '--pixel-size-m', '10']
    summary = _tool.main([CONFIG, checkpoint, images, '--save-probs'] + opts)
    assert sorted(summary['images']) == names
    for name in names:
        img = cv2.imread(osp.join(images, name + '.jpg'))
        mask = cv2.imread(osp.join(out, 'masks', name + '.png'), cv2.IMREAD_UNCHANGED)
        assert mask.shape == img.shape[:2] and mask.max() < 5
        assert cv2.imread(osp.join(out, 'overlays', name + '.png')).shape == img.shape
        probs = np.load(osp.join(out, 'probs', name + '.npy'))
        assert probs.shape == (5, ) + img.shape[:2]
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=1e-2)
        assert np.array_equal(probs.astype(np.float32).argmax(0), mask) or \
            (probs.astype(np.float32).argmax(0) != mask).mean() < 0.01  # float16 ties
        areas = summary['images'][name]['classes']
        assert sum(a['pixels'] for a in areas.values()) == mask.size
        assert areas['oil_spill']['km2'] == pytest.approx(areas['oil_spill']['pixels'] * 1e-4)
    saved = json.load(open(osp.join(out, 'summary.json')))
    assert sorted(saved['images']) == names and saved['classes'][1] == 'oil_spill'
    # a second run skips finished images
    capsys.readouterr()
    _tool.main([CONFIG, checkpoint, images] + opts)
    assert '0 images segmented' in capsys.readouterr().out
    # killed before summary.json was written, and in the middle of appending a record: the finished images come
    # back from summary.jsonl, the torn line is skipped, nothing is segmented again
    log = osp.join(out, 'summary.jsonl')
    assert sorted(json.loads(line)['name'] for line in open(log)) == names
    os.remove(osp.join(out, 'summary.json'))
    with open(log, 'a') as f:
        f.write('{"name": "half-writ')
    resumed = _tool.main([CONFIG, checkpoint, images] + opts)
    assert '0 images segmented' in capsys.readouterr().out
    assert resumed['images'] == summary['images']
    assert json.load(open(osp.join(out, 'summary.json')))['images'] == summary['images']
    assert open(log).read().endswith('}\n')  # the torn record was cut off before appending
    # a malformed line that is not the last one is an error naming the file and line
    with open(log, 'a') as f:
        f.write('garbage\n{"name": "x"}\n')
    with pytest.raises(SystemExit, match=r'summary.jsonl: line \d+ is not a JSON record'):
        _tool.main([CONFIG, checkpoint, images] + opts)
    # sliding windows: same output sizes
    out2 = str(tmp_path / 'slide')
    _tool.main([CONFIG, checkpoint, osp.join(images, names[0] + '.jpg'), '--out-dir', out2, '--slide', '32', '32'])
    mask = cv2.imread(osp.join(out2, 'masks', names[0] + '.png'), cv2.IMREAD_UNCHANGED)
    assert mask.shape == cv2.imread(osp.join(images, names[0] + '.jpg')).shape[:2]


def test_inference_bad_input(checkpoint, tmp_path):
    with pytest.raises(SystemExit, match='nowhere'):
        _tool.main([CONFIG, checkpoint, str(tmp_path / 'nowhere.png')])
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(SystemExit, match='broken.png'):
        _tool.main([CONFIG, checkpoint, str(bad), '--out-dir', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match='checkpoint'):
        _tool.main([CONFIG, str(tmp_path / 'missing.pth'), str(bad)])
    with pytest.raises(SystemExit, match='--tile 0 64'):
        _tool.main([CONFIG, checkpoint, str(bad), '--tile', '0', '64'])


def _pointwise(model, crop, probs=False):
    """A fake predictor whose answer at a pixel depends on that pixel only: any tiling must reproduce it."""
    label = (crop[..., 0].astype(np.int64) * 7 + crop[..., 1]) % 5
    out = dict(label=label)
    if probs:
        out['probs'] = np.eye(5, dtype=np.float32)[label].transpose(2, 0, 1)
    return out


@pytest.mark.parametrize('tile,margin', [((16, 16), 0), ((16, 24), 5), ((50, 7), 3), ((500, 500), 64), ((1, 1), 2)])
def test_predict_tiled_stitches_every_pixel_once(tile, margin):
    from projects.sar_oilspill.apis import predict_tiled
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    crops = []

    def fake(model, crop, probs=False):
        crops.append(crop.shape[:2])
        return _pointwise(model, crop, probs)

    probs = np.zeros((5, 37, 45), np.float16)
    label = predict_tiled(None, image, tile, margin, probs_out=probs, predict_fn=fake)
    want = _pointwise(None, image)['label']
    assert label.dtype == np.uint8 and np.array_equal(label, want)
    assert np.array_equal(probs.argmax(0), want) and np.all(probs.sum(0) == 1)
    # one prediction per block, each with its margins where the scene has them
    th, tw = tile
    blocks = [(y, x) for y in range(0, 37, th) for x in range(0, 45, tw)]
    assert len(crops) == len(blocks)
    for (y, x), shape in zip(blocks, crops):
        h = min(y + th, 37) + min(margin, 37 - min(y + th, 37)) - max(0, y - margin)
        w = min(x + tw, 45) + min(margin, 45 - min(x + tw, 45)) - max(0, x - margin)
        assert shape == (h, w)


def test_predict_tiled_into_writers_equals_the_arrays():
    """label_out / conf_out / probs_out as block writers (as the whole-scene tool passes GeoTIFF writers): the same
    values as the arrays, each pixel written once, the label before the probabilities and the confidence."""
    from projects.sar_oilspill.apis import predict_tiled
    image = np.random.default_rng(1).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    conf = np.zeros((37, 45), np.uint8)
    label = predict_tiled(None, image, (16, 20), 4, conf_out=conf, predict_fn=_pointwise)
    order = []

    class Writer:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape
            self.data, self.hits = np.zeros(shape, np.float32), np.zeros(shape[-2:], int)

        def __setitem__(self, key, value):
            order.append(self.name)
            self.data[key] = value
            self.hits[key[-2:]] += 1

    lw, cw, pw = Writer('label', (37, 45)), Writer('conf', (37, 45)), Writer('probs', (5, 37, 45))
    assert predict_tiled(None, image, (16, 20), 4, label_out=lw, conf_out=cw, probs_out=pw,
                         predict_fn=_pointwise) is lw
    assert np.array_equal(lw.data, label) and np.array_equal(cw.data, conf) and (conf == 255).all()
    assert np.array_equal(pw.data.argmax(0), label)
    assert all((w.hits == 1).all() for w in (lw, cw, pw))
    assert order[:3] == ['label', 'probs', 'conf'] and len(order) == 3 * 9
    with pytest.raises(ValueError, match=r'label_out has shape \(3, 3\)'):
        predict_tiled(None, image, (16, 20), label_out=np.zeros((3, 3), np.uint8), predict_fn=_pointwise)


def test_predict_tiled_real_model_and_cli(synthetic_osd, checkpoint, tmp_path):
    from projects.sar_oilspill.apis import init_segmentor, predict_image, predict_tiled
    images = osp.join(synthetic_osd, 'test', 'images')
    path = osp.join(images, sorted(os.listdir(images))[0])
    image = cv2.imread(path)
    model = init_segmentor(CONFIG, checkpoint)
    whole = predict_image(model, image)['label']
    assert np.array_equal(predict_tiled(model, image, image.shape[:2], 16), whole)  # one block: the same
    tiled = predict_tiled(model, image, (32, 32), 32)
    assert tiled.shape == whole.shape and tiled.max() < 5
    with pytest.raises(ValueError, match='tile'):
        predict_tiled(model, image, (0, 32))
    with pytest.raises(ValueError, match='probs_out'):
        predict_tiled(model, image, (32, 32), probs_out=np.zeros((5, 3, 3), np.float16))
    # the CLI: blocks, probabilities written into a file on disk, the mask their argmax
    out = str(tmp_path / 'tiled')
    _tool.main([CONFIG, checkpoint, path, '--out-dir', out, '--tile', '32', '32', '--tile-margin', '32',
                '--save-probs'])
    name = osp.splitext(osp.basename(path))[0]
    mask = cv2.imread(osp.join(out, 'masks', name + '.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask, tiled)
    probs = np.load(osp.join(out, 'probs', name + '.npy'))
    assert probs.dtype == np.float16 and probs.shape == (5, ) + image.shape[:2]
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=1e-2)
    assert (probs.astype(np.float32).argmax(0) == mask).mean() > 0.99  # float16 ties
    assert not [f for f in os.listdir(osp.join(out, 'probs')) if 'tmp' in f]


@pytest.mark.parametrize('width,skip', [(7, True), ((1 << 19) + 3, True), ((1 << 19) + 3, False)])
def test_overlay_labels_against_formula(width, skip):
    """Colour blending (in row strips for large scenes) equals the formula on the whole image, grey or RGB input."""
    from projects.sar_oilspill.visualization.grid import overlay_labels
    rng = np.random.default_rng(1)
    height = 5  # the wide cases take 2 rows per strip: three strips
    palette = [(0, 0, 0), (0, 255, 255), (255, 0, 0), (153, 76, 0), (0, 153, 0)]
    label = rng.integers(0, 5, (height, width))
    for image in (rng.integers(0, 256, (height, width), dtype=np.uint8),
                  rng.integers(0, 256, (height, width, 3), dtype=np.uint8)):
        rgb = (np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image).astype(np.float64)
        colour = np.asarray(palette, np.float64)[label]
        tint = (label > 0) if skip else np.ones_like(label, bool)
        want = np.where(tint[..., None], 0.7 * rgb + 0.3 * colour, rgb)
        got = overlay_labels(image, label, palette, alpha=0.3, skip_background=skip)
        assert got.dtype == np.uint8 and got.shape == (height, width, 3)
        assert np.abs(got.astype(np.int64) - np.round(want)).max() <= 1  # float32 vs float64 rounding
    with pytest.raises(ValueError, match='palette'):
        overlay_labels(image, np.full((height, width), 7), palette)


def test_class_areas_uint8_and_int64_agree():
    from projects.sar_oilspill.apis import class_areas
    label = np.random.default_rng(2).integers(0, 5, (60, 70))
    classes = ['a', 'b', 'c', 'd', 'e']
    want = class_areas(label.astype(np.int64), classes, 10.0)
    assert class_areas(label.astype(np.uint8), classes, 10.0) == want
    assert sum(v['pixels'] for v in want.values()) == label.size
    assert want['c']['pixels'] == int((label == 2).sum()) and want['c']['km2'] == pytest.approx(
        (label == 2).sum() * 1e-4)
