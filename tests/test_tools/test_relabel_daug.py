"""tools/dataset_tools/relabel_daug.py: a D_aug copy with a segmentor's logits as soft labels.

A tiny 2-class ResNet/FCN segmentor relabels a small D_aug. With a random classifier the stored logits are checked
against mmseg's ``inference_model`` called here on the stored image; with a constant classifier (zero weights, a
bias) every logit, the label shares and the agreement with the source labels are known by hand.
"""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CLASSES = ['background', 'oil_spill']


def _tool():
    spec = importlib.util.spec_from_file_location('relabel_daug',
                                                  osp.join(ROOT, 'tools', 'dataset_tools', 'relabel_daug.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _daug(root, n=5, size=40, seed=0, classes=CLASSES):
    from projects.sar_oilspill.datasets.daug import DAugFolder
    rng = np.random.default_rng(seed)
    folder = DAugFolder(str(root))
    for i in range(n):
        image = rng.integers(0, 256, (size, size), dtype=np.uint8)
        logits = rng.normal(size=(len(classes), size, size)).astype(np.float32)
        folder.write_sample(folder.sample_name(i), image, logits)
    folder.write_manifest(dict(classes=list(classes), num_classes=len(classes), name_prefix='s', num_samples=n,
                               balancing_factor=0.4, complete=True,
                               samples=[dict(name=folder.sample_name(i)) for i in range(n)]))
    return folder


def _meta(num_classes=2):
    return dict(classes=CLASSES if num_classes == 2 else [f'c{k}' for k in range(num_classes)])


def test_logits_are_the_segmentors_on_the_copied_images(tmp_path, tiny_fcn_segmentor):
    src = _daug(tmp_path / 'src')
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, _meta())  # random weights: logits that depend on the image
    out = tmp_path / 'relabelled'
    assert _tool().main([cfg, ckpt, '--daug', src.root, '--out-dir', str(out)]) == 0
    from mmengine.config import Config
    from mmseg.apis import inference_model, init_model
    ref_cfg = Config.fromfile(cfg)
    ref_cfg.test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]  # no label file
    model = init_model(ref_cfg, ckpt, device='cpu')
    manifest = json.load(open(out / 'manifest.json'))
    assert manifest['complete'] is True and manifest['source'] == 'relabelled'
    assert manifest['classes'] == CLASSES and manifest['num_classes'] == 2
    assert manifest['source_daug'] == osp.abspath(src.root) and manifest['source_manifest']['balancing_factor'] == 0.4
    assert [s['name'] for s in manifest['samples']] == [f's{i:06d}' for i in range(5)]
    for s in manifest['samples']:
        with open(osp.join(src.root, 'images', f'{s["name"]}.png'), 'rb') as f:
            src_png = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        got_img = cv2.imread(str(out / 'images' / f'{s["name"]}.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got_img, src_png)  # the image, bit for bit
        logits = np.load(out / 'logits' / f'{s["name"]}.npy')
        assert logits.dtype == np.float16 and logits.shape == (2, 40, 40)
        ref = inference_model(model, cv2.cvtColor(src_png, cv2.COLOR_GRAY2BGR)).seg_logits.data.numpy()
        np.testing.assert_allclose(logits.astype(np.float32), ref, rtol=2e-3, atol=2e-3)  # float16 storage
        assert np.ptp(ref) > 0  # an image-dependent model: not a constant that any code would reproduce
    # the copy is a D_aug like any other
    from projects.sar_oilspill.datasets.daug import DAugDataset
    ds = DAugDataset(data_root=str(out), pipeline=[], metainfo=dict(classes=tuple(CLASSES)))
    assert len(ds) == 5


def test_constant_segmentor_shares_agreement_and_resume(tmp_path, capsys, tiny_fcn_segmentor):
    src = _daug(tmp_path / 'src', n=4, seed=1)
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, _meta(), bias=[0.5, 2.0])  # oil wins everywhere by 1.5
    out = tmp_path / 'relabelled'
    tool = _tool()
    assert tool.main([cfg, ckpt, '--daug', src.root, '--out-dir', str(out)]) == 0
    first = json.load(open(out / 'manifest.json'))
    for name in [f's{i:06d}' for i in range(4)]:
        logits = np.load(out / 'logits' / f'{name}.npy').astype(np.float32)
        np.testing.assert_allclose(logits[0], 0.5, atol=1e-3)
        np.testing.assert_allclose(logits[1], 2.0, atol=1e-3)
    assert first['label_shares'] == {'background': 0.0, 'oil_spill': 1.0}
    src_oil = np.mean([np.load(osp.join(src.root, 'logits', f)).astype(np.float32).argmax(0).mean()
                       for f in sorted(os.listdir(osp.join(src.root, 'logits')))])
    assert first['source_label_agreement'] == pytest.approx(src_oil)  # agree exactly where the source says oil
    assert '4 written, 0 kept' in capsys.readouterr().out

    # resumed: an interrupted run writes only what is missing; the manifest is the same
    stamps = {f: osp.getmtime(out / 'logits' / f) for f in os.listdir(out / 'logits')}
    os.remove(out / 'logits' / 's000001.npy')
    assert tool.main([cfg, ckpt, '--daug', src.root, '--out-dir', str(out)]) == 0
    assert '1 written, 3 kept' in capsys.readouterr().out
    assert json.load(open(out / 'manifest.json')) == first
    assert all(osp.getmtime(out / 'logits' / f) == t for f, t in stamps.items() if f != 's000001.npy')

    # another segmentor (other bytes) into the same folder is refused, naming the checkpoint
    cfg2, ckpt2 = tiny_fcn_segmentor(tmp_path, _meta(), bias=[2.0, 0.5], name='seg2')
    assert tool.main([cfg2, ckpt2, '--daug', src.root, '--out-dir', str(out)]) == 2
    err = capsys.readouterr().err
    assert 'checkpoint' in err and str(out) in err
    assert json.load(open(out / 'manifest.json')) == first


def test_source_agreed_keeps_the_source_logits_where_the_segmentor_agrees(tmp_path, capsys, tiny_fcn_segmentor):
    """--labels source-agreed: the source's own logits, bit for bit, and a label mask that is True exactly where the
    segmentor's argmax (a constant classifier: oil everywhere) equals the source's; a student reads no label
    elsewhere. Shares and agreement are over the labelled pixels."""
    src = _daug(tmp_path / 'src', n=4, seed=2)
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, _meta(), bias=[0.5, 2.0])  # oil wins everywhere
    out = tmp_path / 'agreed'
    tool = _tool()
    assert tool.main([cfg, ckpt, '--daug', src.root, '--out-dir', str(out), '--labels', 'source-agreed']) == 0
    assert '4 written, 0 kept' in capsys.readouterr().out
    manifest = json.load(open(out / 'manifest.json'))
    assert manifest['label_mask'] is True and manifest['labels'] == 'source-agreed'
    from projects.sar_oilspill.datasets.daug import DAugDataset, DAugFolder
    dst = DAugFolder(str(out))
    oil = []
    for s in manifest['samples']:
        name = s['name']
        src_logits = np.load(osp.join(src.root, 'logits', f'{name}.npy'))
        np.testing.assert_array_equal(np.load(out / 'logits' / f'{name}.npy'), src_logits)
        mask = cv2.imread(str(out / 'valid' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        src_oil = src_logits.astype(np.float32).argmax(0) == 1
        np.testing.assert_array_equal(mask, np.where(src_oil, 255, 0))
        np.testing.assert_array_equal(dst.read_valid(name), src_oil)
        oil.append(src_oil.mean())
    assert 0.3 < np.mean(oil) < 0.7  # random source logits: both labelled and unlabelled pixels
    assert manifest['labelled_share'] == pytest.approx(np.mean(oil))
    assert manifest['label_shares'] == {'background': 0.0, 'oil_spill': 1.0}  # of the labelled pixels
    assert manifest['source_label_agreement'] == 1.0
    ds = DAugDataset(data_root=str(out), pipeline=[dict(type='LoadSoftLabels')], metainfo=dict(classes=tuple(CLASSES)))
    item = ds[0]
    np.testing.assert_array_equal(item['gt_soft_logits'][..., -1], dst.read_valid('s000000'))

    # the default mode cannot resume into it (other labels), and the folder is left as it was
    assert tool.main([cfg, ckpt, '--daug', src.root, '--out-dir', str(out)]) == 2
    assert 'labels' in capsys.readouterr().err
    assert json.load(open(out / 'manifest.json')) == manifest

    # a segmentor that agrees nowhere (background everywhere on a source that says oil everywhere) is refused
    allo = _daug(tmp_path / 'all_oil', n=2, seed=3)
    for f in os.listdir(osp.join(allo.root, 'logits')):
        z = np.zeros((2, 40, 40), np.float16)
        z[1] = 5.0
        np.save(osp.join(allo.root, 'logits', f), z)
    cfg2, ckpt2 = tiny_fcn_segmentor(tmp_path, _meta(), bias=[2.0, 0.5], name='bg')
    assert tool.main([cfg2, ckpt2, '--daug', allo.root, '--out-dir', str(tmp_path / 'none'),
                      '--labels', 'source-agreed']) == 2
    assert 'agrees with' in capsys.readouterr().err


def test_bad_input_is_named(tmp_path, capsys, tiny_fcn_segmentor):
    src = _daug(tmp_path / 'src', n=2)
    cfg, ckpt = tiny_fcn_segmentor(tmp_path, _meta())
    tool = _tool()
    assert tool.main([cfg, ckpt, '--daug', src.root, '--out-dir', src.root]) == 2
    assert 'is the source D_aug itself' in capsys.readouterr().err
    assert tool.main([cfg, str(tmp_path / 'nope.pth'), '--daug', src.root, '--out-dir', str(tmp_path / 'o')]) == 2
    assert 'nope.pth' in capsys.readouterr().err
    assert tool.main([cfg, ckpt, '--daug', str(tmp_path / 'missing'), '--out-dir', str(tmp_path / 'o')]) == 2
    assert 'manifest.json not found' in capsys.readouterr().err
    cfg3, ckpt3 = tiny_fcn_segmentor(tmp_path, _meta(3), name='seg3')
    assert tool.main([cfg3, ckpt3, '--daug', src.root, '--out-dir', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err
    assert 'decode_head.num_classes=3' in err and 'has 2 classes' in err and str(src.root) in err
    assert not osp.exists(tmp_path / 'o' / 'logits')  # nothing written on a refusal
