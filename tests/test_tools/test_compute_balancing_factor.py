"""tools/compute_balancing_factor.py on the real SOS subset and on bad input."""
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
_spec = importlib.util.spec_from_file_location('compute_balancing_factor',
                                               osp.join(ROOT, 'tools', 'compute_balancing_factor.py'))
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)
main = _tool.main


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # configs are given relative to the repository, as on the command line


def test_balancing_factor_tool_on_real_palsar_tiles(sos_mini, tmp_path):
    out = str(tmp_path / 'b.json')
    # the config's training part: 360 of the 400 palsar training tiles of sos_mini (40 are the validation part)
    part = main(['configs/sar_jointnet/sos_alos.py', '--num-workers', '0', '--out', out, '--cfg-options',
                 f'train_dataloader.dataset.data_root={sos_mini}'])
    assert json.load(open(out))['num_pairs'] == 360 and part == pytest.approx(0.4346, abs=1e-3)
    # independent computation: the tiles are all 256x256, so by Parseval Eq. 20 reduces to the RMS of the image
    # pixels in [-1, 1] (one-hot masks in {-1, 1} have power H*W whatever the labels); read with cv2 from the
    # files the training part lists
    cv2 = pytest.importorskip('cv2')
    import numpy as np
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    import projects.sar_oilspill  # noqa: F401
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/sar_jointnet/sos_alos.py'))
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=sos_mini, pipeline=[]))
    paths = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    assert len(paths) == 360
    sum_sq = n_pix = 0
    for path in paths:
        x = cv2.imread(path, cv2.IMREAD_GRAYSCALE).astype(np.float64) / 127.5 - 1.0
        sum_sq, n_pix = sum_sq + float(np.sum(x * x)), n_pix + x.size
    assert part == pytest.approx(np.sqrt(sum_sq / n_pix), rel=1e-6)
    # all 400 tiles (../shared/data/README.md); the paper's full set gives 0.447
    value = main(['configs/sar_jointnet/sos_alos.py', '--num-workers', '0', '--out', out, '--cfg-options',
                  f'train_dataloader.dataset.data_root={sos_mini}', 'train_dataloader.dataset.split=None'])
    assert value == pytest.approx(0.433, abs=1e-3)
    saved = json.load(open(out))
    assert saved['balancing_factor'] == pytest.approx(value) and saved['num_pairs'] == 400
    fragment = open(osp.join(str(tmp_path), 'balancing_factor.py')).read()
    assert f'balancing_factor={value:.6f}' in fragment


def test_balancing_factor_tool_errors(tmp_path):
    with pytest.raises(SystemExit, match='does not exist'):
        main(['configs/sar_jointnet/nope.py'])
    with pytest.raises(SystemExit, match='DAKDDataset'):
        main(['configs/dakd/saross_sos_alos.py', '--out', str(tmp_path / 'b.json')])
    with pytest.raises((SystemExit, FileNotFoundError), match='nowhere'):
        main(['configs/sar_jointnet/sos_alos.py', '--num-workers', '0', '--out', str(tmp_path / 'b.json'),
              '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path / "nowhere"}'])
