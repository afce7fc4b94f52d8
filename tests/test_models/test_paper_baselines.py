"""The segmentation baselines of the paper's Tables 4/6 that mmseg lacks: CBD-Net (SCSEResNet + CBDNetHead), LinkNet
(ResNet-18 + LinkNetHead), DeepLab v2 (dilated ResNet-101 + ASPPV2Head). Configs build at paper size; each head is
checked against a hand computation or scipy; one config per model trains 2 iterations on a tiny SOS-layout folder."""
import copy
import functools
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from scipy import ndimage

from projects.sar_oilspill.models.decode_heads.cbdnet_head import DilatedCenter, boundary_f1_loss, inner_boundary
from projects.sar_oilspill.models.decode_heads.linknet_head import deconv_x2
from projects.sar_oilspill.models.backbones.scse_resnet import SCSE

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
# model -> (decode head, backbone, backbone depth, logits stride, parameters in millions at K = 2: (low, high))
MODELS_ = {'cbdnet': ('CBDNetHead', 'SCSEResNet', 34, 1, (30.5, 32.5)),
           'linknet': ('LinkNetHead', 'ResNet', 18, 1, (11.0, 12.0)),  # LinkNet paper: 11.5 M
           'deeplabv2': ('ASPPV2Head', 'ResNetV1c', 101, 8, (42.0, 43.5))}
DATASETS_ = {'osd': 5, 'sos_alos': 2, 'sos_sentinel': 2}


@functools.lru_cache(maxsize=None)
def _parse(model, data):
    return Config.fromfile(osp.join(ROOT, 'configs', 'baselines', f'{model}_{data}.py'))


def _cfg(model, data):
    return copy.deepcopy(_parse(model, data))


def _keep(store, key, which):
    """A forward (pre-)hook that stores its first input or output and returns None (leaves it unchanged)."""
    def hook(module, args, *output):
        store.setdefault(key, output[0] if which == 'out' else args[0])
    return hook


def _samples(labels):
    out = []
    for lab in labels:
        s = SegDataSample(gt_sem_seg=PixelData(data=lab[None].long()))
        s.set_metainfo(dict(img_shape=tuple(lab.shape), ori_shape=tuple(lab.shape), pad_shape=tuple(lab.shape)))
        out.append(s)
    return out


# ----------------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize('model', list(MODELS_))
def test_paper_sized_models_build_and_predict(model):
    head_type, backbone_type, depth, stride, (low, high) = MODELS_[model]
    for data, num_classes in DATASETS_.items():
        cfg = _cfg(model, data)
        assert cfg.model.decode_head.type == head_type and cfg.model.decode_head.num_classes == num_classes
        assert cfg.model.backbone.type == backbone_type and cfg.model.backbone.depth == depth
        assert cfg.model.get('auxiliary_head') is None
        assert cfg.model.pretrained is None and cfg.model.backbone.get('init_cfg') is None  # nothing downloads
        unet = _cfg('unet', data)  # same data, schedule and runtime as the existing baselines
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg', 'optim_wrapper',
                    'val_evaluator', 'custom_imports'):
            assert cfg[key] == unet[key], (model, data, key)
    torch.manual_seed(0)
    net = MODELS.build(_cfg(model, 'osd').model).eval()
    n = sum(p.numel() for p in net.parameters()) / 1e6
    # 5 classes instead of 2 adds a few thousand parameters, well inside the bounds
    assert low < n < high, f'{model}: {n:.2f} M parameters'
    with torch.no_grad():
        logits = net(torch.randn(1, 3, 32, 64), mode="tensor")
        pred = net(torch.randn(1, 3, 32, 64), [SegDataSample(metainfo=dict(
            img_shape=(32, 64), ori_shape=(32, 64), pad_shape=(32, 64)))], mode='predict')
    assert logits.shape == (1, 5, 32 // stride, 64 // stride) and torch.isfinite(logits).all()
    assert pred[0].pred_sem_seg.data.shape == (1, 32, 64)


# ----------------------------------------------------------------------------------------------------- DeepLab v2
def _aspp(**kw):
    cfg = dict(type='ASPPV2Head', in_channels=6, num_classes=3, dilations=(6, 12, 18, 24))
    cfg.update(kw)
    return MODELS.build(cfg)


def test_aspp_v2_is_the_sum_of_four_dilated_convs_to_the_logits():
    torch.manual_seed(0)
    head = _aspp()
    head.init_weights()
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in head.modules())
    assert sum(p.numel() for p in head.parameters()) == 4 * (6 * 3 * 9 + 3)  # no hidden width, no conv_seg
    for conv in convs:  # DeepLab's prototxt: N(0, 0.01), bias 0
        assert conv.weight.std() < 0.02 and (conv.bias == 0).all()
    weights = [torch.randn(3, 6, 3, 3) for _ in range(4)]
    biases = [torch.randn(3) for _ in range(4)]
    with torch.no_grad():
        for conv, w, b in zip(head.aspp, weights, biases):
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    x = torch.randn(2, 6, 9, 13)
    expected = sum(F.conv2d(x, w, b, padding=d, dilation=d) for w, b, d in zip(weights, biases, (6, 12, 18, 24)))
    out = head([torch.zeros(1), torch.zeros(1), torch.zeros(1), x])  # in_index=-1: the last level
    torch.testing.assert_close(out, expected)


def test_aspp_v2_refuses_v3_arguments():
    for bad in (dict(channels=512), dict(norm_cfg=dict(type='BN'))):
        with pytest.raises(ValueError, match='no hidden width'):
            _aspp(**bad)
    with pytest.raises(ValueError, match='dilations'):
        _aspp(dilations=())


# ----------------------------------------------------------------------------------------------------- LinkNet
@pytest.mark.parametrize('kernel', [2, 3, 4, 5])
def test_deconv_doubles_odd_sizes_exactly(kernel):
    assert deconv_x2(2, 3, kernel, None, None)(torch.randn(1, 2, 5, 7)).shape == (1, 3, 10, 14)


def _tiny_linknet(head='LinkNetHead', **kw):
    head_cfg = dict(type=head, in_channels=[8, 16, 32, 64], channels=4, num_classes=3, dropout_ratio=0.0,
                    norm_cfg=dict(type='BN'))
    head_cfg.update(kw)
    return MODELS.build(dict(
        type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor', size_divisor=None),
        backbone=dict(type='ResNet' if head == 'LinkNetHead' else 'SCSEResNet', depth=18, base_channels=8,
                      stem_channels=8, out_indices=(0, 1, 2, 3), style='pytorch'),
        decode_head=head_cfg, test_cfg=dict(mode='whole')))


@pytest.mark.parametrize('size', [(64, 96), (95, 27)])
def test_linknet_decoder_resolution_and_additive_skips(size):
    torch.manual_seed(0)
    net = _tiny_linknet()
    head = net.decode_head
    seen = {}
    head.decoders[0].register_forward_hook(_keep(seen, 'd0', 'out'))
    head.decoders[1].register_forward_pre_hook(_keep(seen, 'in1', 'in'))
    x = torch.randn(2, 3, *size)
    feats = net.backbone(x)
    logits = head(feats)
    h, w = size
    # stride-4 level of a ResNet: ceil(ceil(n / 2) / 2); the logits are 4x that (= the input for multiples of 4)
    q = lambda n: -(-(-(-n // 2)) // 2)  # noqa: E731
    assert logits.shape == (2, 3, 4 * q(h), 4 * q(w))
    # block 1's input is block 0's output (x2, cropped to the skip) PLUS encoder level 2: the LinkNet link
    skip = feats[2]
    torch.testing.assert_close(seen['in1'], seen['d0'][..., :skip.shape[-2], :skip.shape[-1]] + skip)
    # each decoder block: 1x1 (m -> m/4), 3x3 full-conv x2, 1x1 (m/4 -> n)
    block = head.decoders[0]
    assert block[0].conv.kernel_size == (1, 1) and block[0].conv.out_channels == 64 // 4
    assert isinstance(block[1][0], torch.nn.ConvTranspose2d) and block[1][0].kernel_size == (3, 3)
    assert block[2].conv.out_channels == 32
    # trains end to end: every parameter gets a gradient
    losses = net.loss(x, _samples(torch.randint(0, 3, (2, *size))))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


# ----------------------------------------------------------------------------------------------------- CBD-Net
def test_scse_resnet_recalibrates_between_stages():
    torch.manual_seed(0)
    enc = MODELS.build(dict(type='SCSEResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(0, 1, 2, 3)))
    plain = MODELS.build(dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(0, 1, 2, 3)))
    assert set(plain.state_dict()) < set(enc.state_dict())
    assert all(k.startswith('scse.') for k in set(enc.state_dict()) - set(plain.state_dict()))
    seen = {}
    enc.scse[0].register_forward_hook(_keep(seen, 'scse0', 'out'))
    enc.layer2.register_forward_pre_hook(_keep(seen, 'layer2_in', 'in'))
    outs = enc(torch.randn(1, 3, 64, 64))
    assert seen['layer2_in'] is seen['scse0'] and outs[0] is seen['scse0']
    # scSE by hand: U * sigmoid(W2 W1 mean(U)) + U * sigmoid(w^T U)
    gate = SCSE(8)
    u = torch.randn(2, 8, 5, 6)
    w1, w2 = gate.channel_gate[1].weight[:, :, 0, 0], gate.channel_gate[2].weight[:, :, 0, 0]
    ws = gate.spatial_gate[0].weight[0, :, 0, 0]
    chan = torch.sigmoid(u.mean((2, 3)) @ w1.T @ w2.T)[:, :, None, None]
    spat = torch.sigmoid(torch.einsum('bchw,c->bhw', u, ws))[:, None]
    torch.testing.assert_close(gate(u), u * chan + u * spat)


def test_dilated_center_by_hand():
    torch.manual_seed(0)
    block = DilatedCenter(3, (1, 2, 4, 8))
    x = torch.randn(1, 3, 11, 10)
    y, expected = x, x
    for conv, d in zip(block.convs, (1, 2, 4, 8)):
        y = torch.relu(F.conv2d(y, conv.weight, conv.bias, padding=d, dilation=d))
        expected = expected + y
    torch.testing.assert_close(block(x), expected)
    assert all((conv.bias == 0).all() for conv in block.convs)


def test_edge_target_on_a_hand_made_label_map():
    labels = torch.tensor([[0, 0, 0, 0, 0, 0, 0],
                           [0, 0, 1, 1, 1, 0, 0],
                           [0, 0, 1, 1, 1, 0, 0],
                           [0, 0, 1, 1, 1, 0, 0],
                           [0, 0, 0, 0, 0, 0, 2],
                           [0, 0, 0, 0, 0, 0, 2]])
    onehot = F.one_hot(labels, 3).permute(2, 0, 1)[None].float()
    edges = inner_boundary(onehot, 3)[0]
    expected_1 = torch.tensor([[0, 0, 0, 0, 0, 0, 0],
                               [0, 0, 1, 1, 1, 0, 0],
                               [0, 0, 1, 0, 1, 0, 0],
                               [0, 0, 1, 1, 1, 0, 0],
                               [0, 0, 0, 0, 0, 0, 0],
                               [0, 0, 0, 0, 0, 0, 0]]).float()
    expected_2 = torch.tensor([[0] * 7] * 4 + [[0, 0, 0, 0, 0, 0, 1]] * 2).float()
    torch.testing.assert_close(edges[1], expected_1)
    torch.testing.assert_close(edges[2], expected_2)
    # scipy: pixels of the class removed by a 3x3 erosion (outside the image counts as inside the class)
    for k in range(3):
        mask = (labels == k).numpy()
        ref = mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3)), border_value=1)
        assert np.array_equal(edges[k].numpy() > 0, ref), k
    # ignored pixels (255) create no edge and carry none
    ignored = labels.clone()
    ignored[:, 5:] = 255
    valid = (ignored != 255)[None]
    edges = inner_boundary(F.one_hot(torch.where(valid[0], ignored, 0), 3).permute(2, 0, 1)[None].float(), 3, valid)
    exp_1 = expected_1.clone()
    exp_1[2, 4] = 0  # its only outside neighbours were in the ignored columns
    torch.testing.assert_close(edges[0, 1], exp_1)
    assert edges[0, 0, :, 4].tolist() == [1, 0, 0, 0, 1, 0]
    assert (edges[0, :, :, 5:] == 0).all() and (edges[0, 2] == 0).all()


def test_boundary_f1_loss_by_hand():
    labels = torch.zeros(1, 4, 8, dtype=torch.long)
    labels[..., 4:] = 1  # boundaries: class 0 at column 3, class 1 at column 4
    onehot = F.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    assert boundary_f1_loss(onehot, labels) < 1e-6  # perfect prediction
    shifted = torch.zeros_like(labels)
    shifted[..., 5:] = 1  # predicted boundaries one column to the right: columns 4 and 5
    pred = F.one_hot(shifted, 2).permute(0, 3, 1, 2).float()
    assert boundary_f1_loss(pred, labels, tolerance=3) < 1e-6  # within +-1 column: P = R = 1
    assert abs(float(boundary_f1_loss(pred, labels, tolerance=1)) - 1) < 1e-6  # no overlap: P = R = 0
    # a class absent from a sample counts 1 (no gradient), as in the release's loss on oil-free tiles
    three = F.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    assert abs(float(boundary_f1_loss(three, labels)) - 1 / 3) < 1e-6
    # class 0 predicted one column further in rows 2-3 (tolerance 1: exact matches only). Predicted edges:
    # class 0 (0,3) (1,3) (2,3) (2,4) (3,4), 3 of them on the true column 3: P = 3/5, R = 3/4;
    # class 1 (0,4) (1,4) (1,5) (2,5) (3,5), 2 of them on the true column 4: P = 2/5, R = 2/4.
    moved = labels.clone()
    moved[0, 2:, 4] = 0
    pred = F.one_hot(moved, 2).permute(0, 3, 1, 2).float()
    assert inner_boundary(pred, 3)[0, 0].nonzero().tolist() == [[0, 3], [1, 3], [2, 3], [2, 4], [3, 4]]
    bf1 = [2 * p * r / (p + r) for p, r in ((3 / 5, 3 / 4), (2 / 5, 2 / 4))]
    expected = 1 - sum(bf1) / 2  # = 4/9
    assert abs(float(boundary_f1_loss(pred, labels, tolerance=1)) - expected) < 1e-5


@pytest.mark.parametrize('mode', ['multiply', 'add'])
def test_cbdnet_loss_modes(mode):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 20:40, 10:50] = 1
    labels[1, :, 60:] = 255
    results = {}
    for m in (None, mode):
        torch.manual_seed(0)
        net = _tiny_linknet('CBDNetHead', num_classes=2, boundary_mode=m, final_kernel=4, final_norm=False,
                            loss_decode=[dict(type='CrossEntropyLoss', loss_name='loss_ce'),
                                         dict(type='SoftDiceLoss', loss_name='loss_dice')])
        results[m] = net.loss(x, _samples(labels))
    plain, combined = results[None], results[mode]
    with torch.no_grad():
        factor = boundary_f1_loss(net.decode_head(net.backbone(x)).softmax(1), labels)  # logits at 64 x 64
    assert 0 < factor.item() < 1
    if mode == 'multiply':
        for key in ('decode.loss_ce', 'decode.loss_dice'):
            torch.testing.assert_close(combined[key], plain[key] * factor)
        torch.testing.assert_close(combined['decode.boundary_factor'], factor)
        assert not any('boundary' in k and 'loss' in k for k in combined)
    else:
        torch.testing.assert_close(combined['decode.loss_boundary'], factor)
        for key in ('decode.loss_ce', 'decode.loss_dice'):
            torch.testing.assert_close(combined[key], plain[key])
    sum(v for k, v in combined.items() if 'loss' in k).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_cbdnet_refuses_inconsistent_arguments():
    base = dict(type='CBDNetHead', in_channels=[8, 16, 32, 64], num_classes=2)
    for bad, match in ((dict(boundary_mode='sum'), 'boundary_mode'), (dict(boundary_weight=0.5), 'boundary_weight'),
                       (dict(boundary_kernel=4), 'boundary_kernel'),
                       (dict(out_channels=1), 'out_channels == num_classes')):
        with pytest.raises(ValueError, match=match):
            MODELS.build(dict(base, **bad))


# ----------------------------------------------------------------------------------------------------- training
def _tiny_sos(root, n_train=6, n_test=2, size=64):
    rng = np.random.default_rng(0)
    for folder_img, folder_gt, n, prefix in (('train/palsar', 'train/palsar', n_train, 't'),
                                             ('test/palsar/sat', 'test/palsar/gt', n_test, 'e')):
        os.makedirs(osp.join(root, folder_img), exist_ok=True)
        os.makedirs(osp.join(root, folder_gt), exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size, 3), np.uint8)
            mask[8 + i:30 + i, 10:40] = 255  # oil
            cv2.imwrite(osp.join(root, folder_img, f'{prefix}{i}_sat.jpg'), img)
            cv2.imwrite(osp.join(root, folder_gt, f'{prefix}{i}_mask.png'), mask)
    return str(root)


# shrunk for the test only: ResNet-18 of a quarter width (DeepLab v2: a ResNet-18-D8 instead of a ResNet-101-D8)
_NARROW = {'model.backbone.depth': 18, 'model.backbone.base_channels': 16, 'model.backbone.stem_channels': 16}
SHRINK = {'cbdnet': {**_NARROW, 'model.decode_head.in_channels': [16, 32, 64, 128]},
          'linknet': {**_NARROW, 'model.decode_head.in_channels': [16, 32, 64, 128]},
          'deeplabv2': {**_NARROW, 'model.decode_head.in_channels': 128}}


@pytest.mark.parametrize('model', list(MODELS_))
def test_sos_alos_config_trains_two_iterations(model, tmp_path):
    root = _tiny_sos(tmp_path / 'sos')
    cfg = _cfg(model, 'sos_alos')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.merge_from_dict({
        **SHRINK[model],
        'train_dataloader.dataset.data_root': root, 'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'val_dataloader.dataset.data_root': root, 'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False, 'test_dataloader': None, 'test_cfg': None,
        'test_evaluator': None, 'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 100, 'default_hooks.checkpoint.save_last': False,
        'default_hooks.checkpoint.save_best': None, 'default_hooks.logger.interval': 1, 'param_scheduler': [],
        'env_cfg.dist_cfg.backend': 'gloo', 'randomness': dict(seed=0),
    })
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == 5 and len(runner.val_dataloader.dataset) == 1
    head = runner.model.decode_head
    assert type(head).__name__ == MODELS_[model][0]
    records = []
    loss_fn = runner.model.loss

    def record(*args, **kwargs):
        out = loss_fn(*args, **kwargs)
        records.append({k: float(v) for k, v in out.items()})
        return out

    runner.model.loss = record
    before = {k: v.clone() for k, v in head.state_dict().items()}
    runner.train()  # validates once at iteration 2
    metrics = runner.val_loop.run()
    assert len(records) == 2
    for losses in records:
        assert all(np.isfinite(v) for v in losses.values()), losses
        assert losses['decode.loss_ce'] > 0
    if model == 'cbdnet':
        assert all(0 < r['decode.boundary_factor'] <= 1 and r['decode.loss_dice'] > 0 for r in records)
    after = head.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    assert 0 <= metrics['mIoU'] <= 100
