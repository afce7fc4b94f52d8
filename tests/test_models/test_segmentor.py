"""SoftLabelEncoderDecoder + SAROSSHead: Eq. 10 on hard-only, soft-only and
mixed batches; loss targets checked against an independent computation."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
import projects.sar_oilspill  # noqa: F401 (registers the plugin)

torch.set_num_threads(1)
init_default_scope('mmseg')

K = 3
T = 2.0
LAMBDA_KD, LAMBDA_DICE = 0.7, 0.4


def _model_cfg(decode_head=None):
    head = dict(
        type='SAROSSHead',
        in_channels=[8, 16, 32, 64],
        decoder_channels=(16, 8, 8, 8, 8),
        skip_cfg=dict(type='UNetPPSkip', skip_type='caft'),
        num_classes=K,
        dropout_ratio=0.1,
        loss_decode=[
            dict(type='CrossEntropyLoss', loss_weight=1.0,
                 avg_non_ignore=True),
            dict(type='KDLoss', temperature=T, loss_weight=LAMBDA_KD),
            dict(type='SoftDiceLoss', loss_weight=LAMBDA_DICE),
        ])
    return ConfigDict(
        type='SoftLabelEncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[0., 0., 0.],
            std=[255., 255., 255.],
            size=(40, 30),  # training batches are padded to this size
            pad_val=0,
            seg_pad_val=255),
        backbone=dict(
            type='ResNet',
            depth=18,
            stem_channels=8,
            base_channels=8,
            out_indices=(0, 1, 2, 3),
            norm_cfg=dict(type='BN', requires_grad=True)),
        decode_head=decode_head or head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def _sample(h, w, hard=True, soft=False, seed=0, name='s'):
    g = torch.Generator().manual_seed(seed)
    ds = SegDataSample(metainfo=dict(
        img_path=f'{name}.png', img_shape=(h, w), ori_shape=(h, w)))
    if hard:
        lab = torch.randint(0, K, (1, h, w), generator=g)
        lab[0, :3, :3] = 255
        ds.gt_sem_seg = PixelData(data=lab)
    if soft:
        ds.gt_soft_logits = PixelData(data=3 * torch.randn(K, h, w,
                                                           generator=g))
    img = torch.randint(0, 256, (3, h, w), generator=g).float()
    return img, ds


def _batch(specs):
    imgs, samples = [], []
    for i, (h, w, hard, soft) in enumerate(specs):
        img, ds = _sample(h, w, hard, soft, seed=i, name=f'img{i}')
        imgs.append(img)
        samples.append(ds)
    return dict(inputs=imgs, data_samples=samples)


BATCHES = {
    'hard': [(40, 30, True, False), (33, 27, True, False)],
    'soft': [(40, 30, False, True), (33, 27, False, True)],
    'mixed': [(40, 30, True, False), (33, 27, False, True)],
}


@pytest.mark.parametrize('kind', list(BATCHES))
def test_loss_and_gradients_per_batch_kind(kind):
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg())
    model.train()
    data = model.data_preprocessor(_batch(BATCHES[kind]), True)
    losses = model(**data, mode='loss')
    for key in ('decode.loss_ce', 'decode.loss_kd', 'decode.loss_dice',
                'decode.acc_seg'):
        assert key in losses, key
        assert torch.isfinite(losses[key]).all(), key
    if kind == 'hard':
        assert losses['decode.loss_kd'].item() == 0.
        assert losses['decode.loss_kd'].requires_grad
    else:
        assert losses['decode.loss_kd'].item() > 0
    if kind == 'soft':
        assert losses['decode.loss_ce'].item() == 0.
    else:
        assert losses['decode.loss_ce'].item() > 0
    assert losses['decode.loss_dice'].item() > 0
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_train_step_updates_parameters():
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = copy.deepcopy(model.decode_head.skip.state_dict())
    log_vars = model.train_step(_batch(BATCHES['mixed']), optim)
    assert {'loss', 'decode.loss_ce', 'decode.loss_kd',
            'decode.loss_dice'} <= set(log_vars)
    assert torch.isfinite(log_vars['loss'])
    after = model.decode_head.skip.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def _reference_dice(logits, target, valid):
    """Plain soft Dice over the batch, smooth 1, classes averaged."""
    probs = logits.softmax(1)
    m = valid[:, None].double()
    inter = (probs * target * m).sum((0, 2, 3))
    denom = (probs * m).sum((0, 2, 3)) + (target * m).sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (denom + 1)).mean()


def test_loss_by_feat_targets_with_padding_and_hl_plus_sl():
    """Hand-assembled targets for: a hard sample with ignored pixels, a
    soft-only sample smaller than the padded batch (its padding masked), and a
    sample with both soft logits and some hard pixels."""
    model = MODELS.build(_model_cfg())
    head = model.decode_head
    g = torch.Generator().manual_seed(3)
    n, h, w = 3, 6, 5
    logits = torch.randn(n, K, h, w, generator=g, dtype=torch.float64)
    labels = torch.randint(0, K, (n, h, w), generator=g)
    labels[0, 0, :] = 255
    labels[1] = 255  # soft-only
    labels[2, :, 2:] = 255  # HL+SL: hard on 2 columns, soft elsewhere
    teacher1 = 2 * torch.randn(K, 4, 5, generator=g, dtype=torch.float64)
    teacher2 = 2 * torch.randn(K, h, w, generator=g, dtype=torch.float64)
    samples = []
    for i in range(n):
        ds = SegDataSample()
        ds.gt_sem_seg = PixelData(data=labels[i:i + 1].clone())
        samples.append(ds)
    samples[1].gt_soft_logits = PixelData(data=teacher1)
    samples[2].gt_soft_logits = PixelData(data=teacher2)

    losses = head.loss_by_feat(logits, samples)

    # CE: torch's cross_entropy, mean over non-ignored pixels
    want_ce = F.cross_entropy(logits, labels, ignore_index=255)
    assert losses['loss_ce'].item() == pytest.approx(want_ce.item(),
                                                     rel=1e-6)

    # KD: T^2 (KL + H) summed over sample 1 (4x5 region) and sample 2 (all)
    def kd_sum(student, teacher):
        p = torch.softmax(teacher / T, 0)
        log_q = torch.log_softmax(student / T, 0)
        kl = F.kl_div(log_q, p, reduction='none').sum(0)
        ent = -(p * p.log()).sum(0)
        return (T * T * (kl + ent)).sum()

    kd = kd_sum(logits[1, :, :4, :], teacher1) + kd_sum(logits[2], teacher2)
    want_kd = LAMBDA_KD * kd / (4 * 5 + h * w)
    assert losses['loss_kd'].item() == pytest.approx(want_kd.item(),
                                                     rel=1e-6)

    # Dice target, pixel by pixel: hard one-hot > teacher softmax > masked
    target = torch.zeros(n, K, h, w, dtype=torch.float64)
    valid = torch.zeros(n, h, w, dtype=torch.bool)
    acc_t = torch.full((n, h, w), 255)
    teachers = {1: teacher1, 2: teacher2}
    for i in range(n):
        for y in range(h):
            for x in range(w):
                lab = int(labels[i, y, x])
                if lab != 255:
                    target[i, lab, y, x] = 1.
                    valid[i, y, x] = True
                    acc_t[i, y, x] = lab
                elif i in teachers and y < teachers[i].shape[1]:
                    target[i, :, y, x] = teachers[i][:, y, x].softmax(0)
                    valid[i, y, x] = True
                    acc_t[i, y, x] = int(teachers[i][:, y, x].argmax())
    want_dice = LAMBDA_DICE * _reference_dice(logits, target, valid)
    assert losses['loss_dice'].item() == pytest.approx(want_dice.item(),
                                                       rel=1e-6)
    pred = logits.argmax(1)
    m = acc_t != 255
    want_acc = 100. * (pred[m] == acc_t[m]).double().mean()
    assert losses['acc_seg'].item() == pytest.approx(want_acc.item(),
                                                     rel=1e-5)


def test_padding_of_soft_labels_through_preprocessor():
    """A smaller soft-only sample in a padded batch: KD only on its own
    pixels, so changing the student there matters and the padding does not."""
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg()).eval()
    data = model.data_preprocessor(_batch(BATCHES['mixed']), True)
    samples = data['data_samples']
    model._prepare_samples(data['inputs'], samples)
    assert samples[1].gt_sem_seg.data.shape == (1, 40, 30)
    assert (samples[1].gt_sem_seg.data == 255).all()
    head = model.decode_head
    logits = torch.randn(2, K, 40, 30)
    base = head.loss_by_feat(logits, samples)['loss_kd']
    pad_changed = logits.clone()
    pad_changed[1, 0, 33:, :] += 5.
    pad_changed[1, 1, :, 27:] -= 5.
    assert head.loss_by_feat(pad_changed, samples)['loss_kd'].item() == \
        pytest.approx(base.item(), rel=1e-7)
    inside = logits.clone()
    inside[1, 0, 10, 10] += 5.  # (a shift of all classes is a no-op)
    assert head.loss_by_feat(inside, samples)['loss_kd'].item() != \
        pytest.approx(base.item(), rel=1e-7)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_predict_at_input_resolution(mode):
    cfg = _model_cfg()
    if mode == 'slide':
        cfg.test_cfg = ConfigDict(mode='slide', crop_size=(32, 24),
                                  stride=(21, 16))
    model = MODELS.build(cfg).eval()
    img, ds = _sample(95, 27, hard=False)
    with torch.no_grad():
        out = model.test_step(dict(inputs=[img], data_samples=[ds]))
    assert out[0].pred_sem_seg.data.shape == (1, 95, 27)
    assert out[0].seg_logits.data.shape == (K, 95, 27)
    assert torch.isfinite(out[0].seg_logits.data).all()


def test_errors_are_loud():
    model = MODELS.build(_model_cfg())
    data = model.data_preprocessor(_batch(BATCHES['mixed']), True)
    data['data_samples'][1].gt_soft_logits = PixelData(
        data=torch.randn(K + 1, 33, 27))
    with pytest.raises(ValueError, match='img1.png'):
        model(**data, mode='loss')

    data = model.data_preprocessor(_batch([(20, 20, False, False)]), True)
    with pytest.raises(ValueError, match='neither gt_sem_seg'):
        model(**data, mode='loss')

    stock = _model_cfg(decode_head=dict(
        type='FCNHead', in_channels=64, channels=8, num_convs=1,
        num_classes=K))
    model = MODELS.build(stock)
    data = model.data_preprocessor(_batch(BATCHES['mixed']), True)
    with pytest.raises(ValueError, match='does not support'):
        model(**data, mode='loss')
