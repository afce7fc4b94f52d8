"""Soft labels as a training path of any mmseg decode head: the preprocessor that pads them, the generic loss loop
(SoftLabelLossMixin) on stock heads, checked against an independent NumPy computation, and the generalised Dice."""
import copy
import pickle

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from projects.sar_oilspill.models.decode_heads import SoftLabelLossMixin, enable_soft_labels
from projects.sar_oilspill.models.losses import SoftDiceLoss

K, T, W_KD, W_DICE = 3, 2.0, 0.7, 0.4
LOSSES = [dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
          dict(type='KDLoss', temperature=T, loss_weight=W_KD),
          dict(type='SoftDiceLoss', use_generalised_weights=True, loss_weight=W_DICE)]
HEADS = {
    'FCNHead': dict(type='FCNHead', in_channels=8, channels=4, num_convs=1, num_classes=K),
    'SegformerHead': dict(type='SegformerHead', in_channels=[4, 8], in_index=[0, 1], channels=4, num_classes=K),
    'DepthwiseSeparableASPPHead': dict(type='DepthwiseSeparableASPPHead', in_channels=8, in_index=1, channels=4,
                                       dilations=(1, 2), c1_in_channels=4, c1_channels=2, num_classes=K),
}


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _batch(seed=0, n=3, h=6, w=5):
    """Sample 0: hard labels with ignored pixels; 1: soft only, its logits smaller than the batch (padded) and with
    an invalid block inside; 2: soft logits everywhere plus hard labels on two columns."""
    g = np.random.default_rng(seed)
    labels = g.integers(0, K, (n, h, w))
    labels[0, 0, :] = 255
    labels[1] = 255
    labels[2, :, 2:] = 255
    teacher1 = 2 * g.normal(size=(K, 4, 5))
    valid1 = np.ones((1, 4, 5), bool)
    valid1[0, 1:3, 1:3] = False  # e.g. a rotation's empty corner
    teacher2 = 2 * g.normal(size=(K, h, w))
    samples = []
    for i in range(n):
        s = SegDataSample(metainfo=dict(img_path=f'img{i}.png'))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(labels[i:i + 1].copy()))
        samples.append(s)
    samples[1].gt_soft_logits = PixelData(data=torch.from_numpy(teacher1).float(), valid=torch.from_numpy(valid1))
    samples[2].gt_soft_logits = PixelData(data=torch.from_numpy(teacher2).float())
    # the same targets as dense arrays, for the reference
    soft = np.zeros((n, K, h, w))
    soft_valid = np.zeros((n, h, w), bool)
    soft[1, :, :4, :] = teacher1.astype(np.float32)
    soft_valid[1, :4, :] = valid1[0]
    soft[2] = teacher2.astype(np.float32)
    soft_valid[2] = True
    return samples, labels, soft, soft_valid


def _reference(logits, labels, soft, soft_valid, dice_t=1.0):
    """Eq. 8-10 with generalised Dice, pixel by pixel in float64 NumPy (the Dice's soft targets at ``dice_t``)."""
    hard = labels != 255
    q = _softmax(logits, 1)
    ce = -np.log(np.take_along_axis(q, np.where(hard, labels, 0)[:, None], 1)[:, 0])[hard].mean()
    p_t = _softmax(soft / T, 1)
    kd = T * T * -(p_t * np.log(_softmax(logits / T, 1))).sum(1)[soft_valid].mean()
    # Dice target: hard one-hot, else the teacher's softmax (at dice_t, default 1), else masked
    target = np.zeros_like(q)
    for k in range(K):
        target[:, k] = np.where(hard, labels == k, np.where(soft_valid, _softmax(soft / dice_t, 1)[:, k], 0.))
    valid = (hard | soft_valid)[:, None]
    inter = (q * target * valid).sum((0, 2, 3))
    psum, tsum = (q * valid).sum((0, 2, 3)), (target * valid).sum((0, 2, 3))
    present = tsum >= 1
    w = np.where(present, 1 / np.where(present, tsum, 1) ** 2, 0)
    w = np.where(present, w, w.max())
    dice = 1 - 2 * (w * inter).sum() / (w * (psum + tsum)).sum()
    acc_t = np.where(hard, labels, np.where(soft_valid, soft.argmax(1), -1))
    acc = 100 * (logits.argmax(1) == acc_t)[acc_t >= 0].mean()
    return dict(loss_ce=ce, loss_kd=W_KD * kd, loss_dice=W_DICE * dice, acc_seg=acc)


@pytest.mark.parametrize('name', list(HEADS))
def test_stock_head_losses_match_independent_computation(name):
    head = MODELS.build(dict(HEADS[name], loss_decode=LOSSES))
    stock_cls = type(head)
    assert enable_soft_labels(head)
    assert isinstance(head, SoftLabelLossMixin) and isinstance(head, stock_cls)
    assert type(head).__name__ == f'SoftLabel{name}'
    samples, labels, soft, soft_valid = _batch()
    logits = torch.randn(3, K, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = head.loss_by_feat(logits, samples)
    want = _reference(logits.numpy(), labels, soft, soft_valid)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key].item() == pytest.approx(value, rel=1e-5), key


def test_dice_soft_temperature_softens_the_teacher_targets_only():
    """SoftDiceLoss(soft_temperature=T_d): the Dice's target is softmax(teacher logits / T_d) where a pixel has only
    soft labels, the hard one-hot elsewhere (NumPy reference); CE and KD are unchanged; T_d must be > 0."""
    losses = copy.deepcopy(LOSSES)
    losses[2]['soft_temperature'] = T
    head = MODELS.build(dict(HEADS['FCNHead'], loss_decode=losses))
    enable_soft_labels(head)
    samples, labels, soft, soft_valid = _batch()
    logits = torch.randn(3, K, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = head.loss_by_feat(logits, samples)
    want = _reference(logits.numpy(), labels, soft, soft_valid, dice_t=T)
    for key, value in want.items():
        assert got[key].item() == pytest.approx(value, rel=1e-5), key
    at_1 = _reference(logits.numpy(), labels, soft, soft_valid)
    assert abs(at_1['loss_dice'] - want['loss_dice']) > 1e-3  # the knob changes the Dice term ...
    assert at_1['loss_kd'] == want['loss_kd'] and at_1['loss_ce'] == want['loss_ce']  # ... and only it
    hard_only = [samples[0]]  # no soft labels: the temperature has nothing to act on
    base = MODELS.build(dict(HEADS['FCNHead'], loss_decode=LOSSES))
    enable_soft_labels(base)
    base.load_state_dict(head.state_dict())
    assert base.loss_by_feat(logits[:1], hard_only)['loss_dice'].item() == pytest.approx(
        head.loss_by_feat(logits[:1], hard_only)['loss_dice'].item(), rel=1e-12)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match='soft_temperature'):
            SoftDiceLoss(soft_temperature=bad)


CLASS_WEIGHT = [1.0, 3.0, 0.5]


def test_class_weighted_ce_on_ignored_pixels_is_torch_weighted_mean():
    """mmseg 1.2.2's class-weighted CE indexes class_weight[255] on ignored pixels (open-mmlab/mmsegmentation#3734);
    through SegTargets it is the class-weighted mean over the hard pixels: NumPy and F.cross_entropy as references."""
    head = MODELS.build(dict(HEADS['FCNHead'], loss_decode=[
        dict(type='CrossEntropyLoss', loss_weight=2.0, avg_non_ignore=True, class_weight=CLASS_WEIGHT),
        LOSSES[1]]))
    enable_soft_labels(head)
    samples, labels, _, _ = _batch()
    logits = torch.randn(3, K, 6, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = head.loss_by_feat(logits, samples)['loss_ce'].item()
    hard = labels != 255
    w = np.asarray(CLASS_WEIGHT)[np.where(hard, labels, 0)]
    nll = -np.log(np.take_along_axis(_softmax(logits.numpy(), 1), np.where(hard, labels, 0)[:, None], 1)[:, 0])
    want = 2.0 * (w * nll)[hard].sum() / w[hard].sum()
    assert got == pytest.approx(want, rel=1e-6)
    torch_ce = 2.0 * torch.nn.functional.cross_entropy(
        logits, torch.from_numpy(labels), weight=torch.tensor(CLASS_WEIGHT, dtype=torch.float64), ignore_index=255)
    assert got == pytest.approx(torch_ce.item(), rel=1e-6)
    # a batch without ignored pixels keeps mmseg's own computation, bit for bit
    stock = MODELS.build(dict(HEADS['FCNHead'], loss_decode=dict(
        type='CrossEntropyLoss', avg_non_ignore=True, class_weight=CLASS_WEIGHT)))
    soft = copy.deepcopy(stock)
    enable_soft_labels(soft)
    full = _batch()[0][:1]
    full[0].gt_sem_seg.data[full[0].gt_sem_seg.data == 255] = 1
    small = logits[:1]
    assert torch.equal(soft.loss_by_feat(small, full)['loss_ce'], stock.loss_by_feat(small, full)['loss_ce'])


def test_class_weighted_ce_without_avg_non_ignore_is_refused_on_ignored_pixels():
    head = MODELS.build(dict(HEADS['FCNHead'], loss_decode=[
        dict(type='CrossEntropyLoss', class_weight=CLASS_WEIGHT), LOSSES[1]]))
    enable_soft_labels(head)
    with pytest.raises(ValueError, match='avg_non_ignore=True'):
        head.loss_by_feat(torch.randn(3, K, 6, 5), _batch()[0])


def test_hard_only_batch_gives_mmseg_losses_and_zero_kd():
    torch.manual_seed(0)
    stock = MODELS.build(dict(HEADS['FCNHead'], loss_decode=[LOSSES[0], dict(type='CrossEntropyLoss',
                                                                                 loss_name='loss_ce2')]))
    soft = copy.deepcopy(stock)
    enable_soft_labels(soft)
    samples = _batch()[0]
    for s in samples:
        if 'gt_soft_logits' in s:
            del s.gt_soft_logits
    logits = torch.randn(3, K, 6, 5)
    want = stock.loss_by_feat(logits, samples)
    got = soft.loss_by_feat(logits, samples)
    assert set(got) == set(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    # the soft-label losses give an exact 0 with the graph kept
    head = MODELS.build(dict(HEADS['FCNHead'], loss_decode=LOSSES))
    enable_soft_labels(head)
    out = head.loss_by_feat(logits.requires_grad_(True), samples)
    assert out['loss_kd'].item() == 0. and out['loss_kd'].requires_grad


def test_enabled_head_keeps_parameters_pickles_and_leaves_custom_heads_alone():
    head = MODELS.build(dict(HEADS['SegformerHead'], loss_decode=LOSSES))
    keys = list(head.state_dict())
    enable_soft_labels(head)
    assert list(head.state_dict()) == keys
    assert type(pickle.loads(pickle.dumps(head))) is type(head)
    assert type(copy.deepcopy(head)) is type(head)
    assert enable_soft_labels(head)  # idempotent
    # a second head of the same class shares the generated class
    other = MODELS.build(dict(HEADS['SegformerHead'], loss_decode=LOSSES))
    enable_soft_labels(other)
    assert type(other) is type(head)

    class OwnLossHead(FCNHead):
        def loss_by_feat(self, seg_logits, batch_data_samples):
            return dict(loss_own=seg_logits.sum() * 0)

    own = OwnLossHead(**{k: v for k, v in HEADS['FCNHead'].items() if k != 'type'})
    assert not enable_soft_labels(own) and type(own) is OwnLossHead


def _segmentor(head='FCNHead', losses=LOSSES, size_divisor=16):
    head_cfg = dict(HEADS[head], loss_decode=losses)
    if head == 'FCNHead':
        head_cfg.update(in_channels=64, in_index=3)
    return MODELS.build(dict(
        type='SoftLabelEncoderDecoder',
        data_preprocessor=dict(type='SoftLabelSegDataPreProcessor', mean=[0.] * 3, std=[255.] * 3,
                               size_divisor=size_divisor, pad_val=0, seg_pad_val=255),
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(0, 1, 2, 3)),
        decode_head=head_cfg, train_cfg=dict(), test_cfg=dict(mode='whole')))


def _data():
    g = torch.Generator().manual_seed(0)
    soft = SegDataSample(metainfo=dict(img_path='soft.png'))
    valid = torch.ones(1, 30, 20, dtype=torch.bool)
    valid[0, :5, :5] = False
    soft.gt_soft_logits = PixelData(data=torch.randn(K, 30, 20, generator=g), valid=valid)
    hard = SegDataSample(metainfo=dict(img_path='hard.png'))
    hard.gt_sem_seg = PixelData(data=torch.randint(0, K, (1, 33, 27), generator=g))
    return dict(inputs=[torch.rand(3, 30, 20, generator=g) * 255, torch.rand(3, 33, 27, generator=g) * 255],
                data_samples=[soft, hard])


def test_preprocessor_pads_soft_labels_with_the_image():
    model = _segmentor()
    raw = _data()
    original = raw['data_samples'][0].gt_soft_logits.data.clone()
    out = model.data_preprocessor(copy.deepcopy(raw), True)
    assert out['inputs'].shape == (2, 3, 48, 32)
    s = out['data_samples'][0].gt_soft_logits
    assert s.data.shape == (K, 48, 32) and s.valid.shape == (1, 48, 32) and s.valid.dtype == torch.bool
    assert torch.equal(s.data[:, :30, :20], original) and (s.data[:, 30:] == 0).all() and (s.data[:, :, 20:] == 0).all()
    want_valid = torch.zeros(48, 32, dtype=torch.bool)
    want_valid[:30, :20] = True
    want_valid[:5, :5] = False
    assert torch.equal(s.valid[0], want_valid)
    assert 'gt_soft_logits' not in out['data_samples'][1]


def test_stock_head_trains_on_mixed_batch_and_respects_the_valid_mask():
    torch.manual_seed(0)
    model = _segmentor()
    assert type(model.decode_head).__name__ == 'SoftLabelFCNHead'
    data = model.data_preprocessor(_data(), True)
    losses = model(**copy.deepcopy(data), mode='loss')
    for key in ('decode.loss_ce', 'decode.loss_kd', 'decode.loss_dice', 'decode.acc_seg'):
        assert torch.isfinite(losses[key]) and (key == 'decode.acc_seg' or losses[key] > 0), key
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decode_head.parameters())

    def kd(teacher_change):
        d = copy.deepcopy(data)
        teacher_change(d['data_samples'][0].gt_soft_logits.data)
        model.eval()  # no dropout / BN statistics updates between the calls
        with torch.no_grad():
            return model(**d, mode='loss')['decode.loss_kd'].item()

    base = kd(lambda t: None)
    assert kd(lambda t: t[:, :5, :5].mul_(-3.)) == pytest.approx(base, rel=1e-6)  # invalid block: no effect
    assert kd(lambda t: t[:, 30:, :].add_(7.)) == pytest.approx(base, rel=1e-6)  # padding: no effect
    assert kd(lambda t: t[:, 10:20, 10:15].mul_(-3.)) != pytest.approx(base, rel=1e-6)  # valid pixels: effect


def test_soft_labels_need_a_soft_label_loss():
    model = _segmentor(losses=[LOSSES[0]])
    data = model.data_preprocessor(_data(), True)
    with pytest.raises(ValueError, match=r"none of its losses \['CrossEntropyLoss'\]"):
        model(**data, mode='loss')
    bad = _data()
    bad['data_samples'][0].gt_soft_logits = PixelData(data=torch.randn(K + 1, 30, 20))
    model = _segmentor()
    with pytest.raises(ValueError, match=r'soft.png must be a float tensor \(3, H, W\)'):
        model(**model.data_preprocessor(bad, True), mode='loss')


# ------------------------------------------------------------------ generalised Dice (Sudre et al. 2017)
def _gdl_numpy(logits, target, valid, smooth=0.0):
    """Sudre's generalised Dice over the batch, w_k = 1 / (sum_n r_kn)^2; classes with less than one pixel of
    target mass get the largest weight of the others."""
    p = _softmax(logits, 1) * valid[:, None]
    r = target * valid[:, None]
    tsum = r.sum((0, 2, 3))
    present = tsum >= 1
    w = np.zeros(len(tsum))
    w[present] = 1 / tsum[present] ** 2
    w[~present] = w[present].max() if present.any() else 0
    num = 2 * (w * (p * r).sum((0, 2, 3))).sum() + smooth
    den = (w * (p.sum((0, 2, 3)) + tsum)).sum() + smooth
    return 1 - num / den


@pytest.mark.parametrize('smooth', [None, 0.5])
def test_generalised_dice_matches_numpy_on_soft_targets(smooth):
    g = np.random.default_rng(4)
    logits = g.normal(size=(2, 4, 7, 9))
    target = _softmax(3 * g.normal(size=(2, 4, 7, 9)), 1)
    target[:, 3] = 1e-6  # a class the teacher (almost) never predicts: below one pixel of mass
    target /= target.sum(1, keepdims=True)
    valid = g.random((2, 7, 9)) > 0.2
    loss = SoftDiceLoss(use_generalised_weights=True, smooth=smooth)
    got = loss(torch.from_numpy(logits), torch.from_numpy(target), valid_mask=torch.from_numpy(valid)).item()
    assert got == pytest.approx(_gdl_numpy(logits, target, valid, smooth or 0.0), rel=1e-9)
    # Sudre's weights make the rare classes count: the generalised and the plain Dice differ
    plain = SoftDiceLoss()(torch.from_numpy(logits), torch.from_numpy(target), valid_mask=torch.from_numpy(valid))
    assert plain.item() != pytest.approx(got, rel=1e-3)
    assert SoftDiceLoss().smooth == 1.0 and SoftDiceLoss(use_generalised_weights=True).smooth == 0.0


def test_generalised_dice_is_scale_free_with_default_smooth():
    """With s = 0 the loss of a prediction depends on the overlap, not on the image size (s = 1 would flatten it to
    ~0 on large images, the weights being ~1 / pixels^2)."""
    logits = torch.tensor([[[[2., -1.]], [[-1., 2.]]]])  # (1, 2, 1, 2)
    labels = torch.tensor([[[0, 0]]])
    small = SoftDiceLoss(use_generalised_weights=True)(logits, labels).item()
    big = SoftDiceLoss(use_generalised_weights=True)(logits.repeat(1, 1, 300, 300), labels.repeat(1, 300, 300))
    assert big.item() == pytest.approx(small, rel=1e-5) and small > 0.1
