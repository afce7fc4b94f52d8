"""ImageNet weights declared by their release URLs: read from $SAR_OILSPILL_WEIGHTS_DIR or the hub cache, a clear
error naming the file, the URL and the ways to supply it otherwise, loaded before any image is read. Nothing is
downloaded: every checkpoint here is fabricated with the real key names, and downloading is replaced by a failure."""
import argparse
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import urllib.error

import pytest
import torch
from mmengine.config import Config

from mmseg.registry import MODELS
from projects.sar_oilspill.models.backbones import MambaVision
from projects.sar_oilspill.models.backbones import pretrained as pt

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """Any download attempt fails as on a machine without network; the hub cache is an empty temporary folder."""
    calls = []

    def fail(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError('no network in tests')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fail)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    monkeypatch.delenv(pt.WEIGHTS_DIR_ENV, raising=False)
    yield calls
    torch.hub.set_dir(old)


def _nvlabs_checkpoint(model: MambaVision, path: str, seed: int = 0) -> dict:
    """An NVlabs/timm-style .pth.tar: weights under `state_dict` with the classifier, timm's `args`."""
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    dim = model.channels[-1]
    full = dict(state, **{'norm.weight': torch.ones(dim), 'norm.bias': torch.zeros(dim),
                          'head.weight': torch.zeros(1000, dim), 'head.bias': torch.zeros(1000)})
    torch.save({'state_dict': full, 'epoch': 309, 'args': argparse.Namespace(model='mamba_vision_B')}, path)
    return state


def test_configs_declare_the_official_release_urls():
    assert pt.MAMBAVISION_B_1K == ('https://huggingface.co/nvidia/MambaVision-B-1K/resolve/main/'
                                   'mambavision_base_1k.pth.tar')
    for name in ('saross/osd.py', 'saross/sos_alos.py', 'saross/sos_sentinel.py', 'dakd/saross_osd.py',
                 'saross/ablations/saross_skip-none_osd.py', 'saross/ablations/saross_skip-conv3x3_osd.py'):
        init = Config.fromfile(osp.join(ROOT, 'configs', name)).model.backbone.init_cfg
        assert init == dict(type='Pretrained', checkpoint=pt.MAMBAVISION_B_1K), name
    for name in ('saross/ablations/saross_r34_osd.py', 'saross/ablations/saross_r34_skip-none_osd.py'):
        init = Config.fromfile(osp.join(ROOT, 'configs', name)).model.backbone.init_cfg
        assert init == dict(type='Pretrained', checkpoint=pt.RESNET34_IMAGENET), name
    for name in ('saross/synthetic_tiny.py', 'saross/sos_alos_tiny_cpu.py', 'dakd/saross_sos_alos_tiny_cpu.py'):
        assert Config.fromfile(osp.join(ROOT, 'configs', name)).model.backbone.get('init_cfg') is None, name


def test_weights_dir_is_read_without_network(no_download, tmp_path, monkeypatch):
    weights = tmp_path / 'weights'
    weights.mkdir()
    src = MambaVision(arch='test')
    state = _nvlabs_checkpoint(src, str(weights / 'mambavision_base_1k.pth.tar'))
    monkeypatch.setenv(pt.WEIGHTS_DIR_ENV, str(weights))
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=pt.MAMBAVISION_B_1K))
    model.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert no_download == []


def test_missing_from_weights_dir_is_a_clear_error(no_download, tmp_path, monkeypatch):
    monkeypatch.setenv(pt.WEIGHTS_DIR_ENV, str(tmp_path))
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=pt.MAMBAVISION_B_1K))
    with pytest.raises(pt.PretrainedWeightsUnavailable) as e:
        model.init_weights()
    text = str(e.value)
    for part in ('mambavision_base_1k.pth.tar', pt.MAMBAVISION_B_1K, pt.WEIGHTS_DIR_ENV, str(tmp_path),
                 '--cfg-options model.backbone.init_cfg.checkpoint=', 'model.backbone.init_cfg=None'):
        assert part in text, part
    assert no_download == []  # the offline folder is set: no network attempt


def test_hub_cache_then_download_failure(no_download, tmp_path):
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=pt.MAMBAVISION_B_1K))
    with pytest.raises(pt.PretrainedWeightsUnavailable, match='no network in tests') as e:
        model.init_weights()
    assert no_download == [pt.MAMBAVISION_B_1K]
    assert pt.WEIGHTS_DIR_ENV in str(e.value)
    # a file already in torch's hub cache (an earlier download) is used as it is
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True, exist_ok=True)
    state = _nvlabs_checkpoint(MambaVision(arch='test'), str(cache / 'mambavision_base_1k.pth.tar'), seed=1)
    model.init_weights()
    assert torch.equal(model.state_dict()['levels.3.blocks.1.mixer.qkv.weight'],
                       state['levels.3.blocks.1.mixer.qkv.weight'])
    assert len(no_download) == 1


# torchvision resnet34 state_dict entries (a sample, incl. every kind): mmseg's ResNet has the same names
TORCHVISION_R34_KEYS = ('conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var',
                        'layer1.0.conv1.weight', 'layer1.2.bn2.running_var', 'layer2.0.downsample.0.weight',
                        'layer2.0.downsample.1.running_mean', 'layer3.5.conv2.weight', 'layer4.2.bn2.bias')


def test_resnet34_imagenet_weights_load_without_torchvision(no_download, tmp_path, monkeypatch):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'saross_resnet34.py')).model.backbone
    cfg.update(base_channels=8, stem_channels=8)  # small widths, the same names
    model = MODELS.build(cfg)
    own = model.state_dict()
    assert set(TORCHVISION_R34_KEYS) <= set(own)
    g = torch.Generator().manual_seed(0)
    fabricated = {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v) for k, v in own.items()
                  if not k.endswith('num_batches_tracked')}  # torchvision's file has none
    fabricated.update({'fc.weight': torch.randn(1000, 64), 'fc.bias': torch.randn(1000)})
    weights = tmp_path / 'weights'
    weights.mkdir()
    torch.save(fabricated, str(weights / 'resnet34-b627a593.pth'))  # a bare state dict, as torchvision's
    monkeypatch.setenv(pt.WEIGHTS_DIR_ENV, str(weights))
    model.init_weights()
    for k, v in model.state_dict().items():
        if k in fabricated:
            assert torch.equal(v, fabricated[k]), k
    assert 'torchvision' not in sys.modules
    assert no_download == []


def _write_config(tmp_path, data_root):
    path = tmp_path / 'tiny_pretrained.py'
    path.write_text(f"_base_ = '{ROOT}/configs/saross/synthetic_tiny.py'\n"
                    "model = dict(backbone=dict(init_cfg=dict(\n"
                    f"    _delete_=True, type='Pretrained', checkpoint='{pt.MAMBAVISION_B_1K}')))\n"
                    f"train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,\n"
                    f"                        dataset=dict(data_root='{data_root}'))\n"
                    "val_dataloader = dict(num_workers=0, persistent_workers=False,\n"
                    f"                      dataset=dict(data_root='{data_root}'))\n"
                    f"test_dataloader = val_dataloader\n"
                    "train_cfg = dict(max_iters=1, val_interval=100)\n"
                    "default_hooks = dict(checkpoint=dict(interval=100), logger=dict(interval=1))\n")
    return str(path)


@pytest.mark.timeout(600)
def test_training_loads_weights_before_reading_any_image(synthetic_osd, tmp_path):
    """tools/train.py: with the weights missing, the run stops with the weights error although every image is
    unreadable (the images are only read after init_weights); with them in the offline folder it trains."""
    broken = tmp_path / 'broken'
    shutil.copytree(synthetic_osd, broken)
    for img in glob.glob(str(broken / '**' / 'images' / '*'), recursive=True):
        open(img, 'wb').write(b'not an image')
    weights = tmp_path / 'weights'
    weights.mkdir()
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='',
               **{pt.WEIGHTS_DIR_ENV: str(weights)})
    r = subprocess.run([sys.executable, 'tools/train.py', _write_config(tmp_path, broken), '--work-dir',
                        str(tmp_path / 'wd1')], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode != 0
    assert 'PretrainedWeightsUnavailable' in r.stderr and 'mambavision_base_1k.pth.tar' in r.stderr, r.stderr[-3000:]
    assert 'unreadable image' not in r.stderr + r.stdout and 'Iter(train)' not in r.stdout

    cfg = Config.fromfile(_write_config(tmp_path, synthetic_osd))
    model = MODELS.build(cfg.model)
    _nvlabs_checkpoint(model.backbone, str(weights / 'mambavision_base_1k.pth.tar'))
    r = subprocess.run([sys.executable, 'tools/train.py', _write_config(tmp_path, synthetic_osd), '--work-dir',
                        str(tmp_path / 'wd2')], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    log = open(glob.glob(str(tmp_path / 'wd2' / '*' / '*.log'))[0]).read()
    assert 'MambaVision: loaded' in log and str(weights / 'mambavision_base_1k.pth.tar') in log
    assert log.index('MambaVision: loaded') < log.index('Iter(train)')
