"""KDLoss (Eq. 8-9) and SoftDiceLoss (Sudre 2017) against hand computations."""
import math

import pytest
import torch
import torch.nn.functional as F

from projects.sar_oilspill.models.losses import KDLoss, SoftDiceLoss

torch.set_num_threads(1)


def _softmax(v):
    m = max(v)
    e = [math.exp(x - m) for x in v]
    s = sum(e)
    return [x / s for x in e]


def _pixels(t):
    """(1, K, 2, 2) tensor -> dict (y, x) -> list of K python floats."""
    return {(y, x): [float(t[0, k, y, x]) for k in range(t.shape[1])]
            for y in range(t.shape[2]) for x in range(t.shape[3])}


# 2 classes, 2x2 pixels; values chosen by hand.
TEACHER = torch.tensor([[[[2., 0.], [1., -1.]], [[0., 0.], [3., 1.]]]])
STUDENT = torch.tensor([[[[1., 0.], [0., 2.]], [[0., 2.], [0., -2.]]]])
VALID = torch.tensor([[[True, True], [True, False]]])


def _kd_by_hand(teacher, student, t, valid):
    tp, sp = _pixels(teacher), _pixels(student)
    ce = {}
    for yx in tp:
        p = _softmax([v / t for v in tp[yx]])
        q = _softmax([v / t for v in sp[yx]])
        ce[yx] = t * t * -sum(pk * math.log(qk) for pk, qk in zip(p, q))
    keep = [yx for yx in ce if bool(valid[0][yx])]
    return ce, keep


@pytest.mark.parametrize('t', [1.0, 2.0, 4.0])
def test_kd_matches_hand_computation(t):
    ce, keep = _kd_by_hand(TEACHER, STUDENT, t, VALID)
    expected_mean = sum(ce[yx] for yx in keep) / len(keep)
    expected_sum = sum(ce[yx] for yx in keep)

    loss = KDLoss(temperature=t, loss_weight=1.0)
    got = loss(STUDENT, TEACHER, valid_mask=VALID)
    assert got.item() == pytest.approx(expected_mean, rel=1e-6)
    got_sum = loss(STUDENT, TEACHER, valid_mask=VALID,
                   reduction_override='sum')
    assert got_sum.item() == pytest.approx(expected_sum, rel=1e-6)
    got_map = KDLoss(temperature=t, reduction='none')(
        STUDENT, TEACHER, valid_mask=VALID)
    assert got_map.shape == (1, 2, 2)
    for yx in ce:
        want = ce[yx] if yx in keep else 0.
        assert got_map[0][yx].item() == pytest.approx(want, rel=1e-6,
                                                      abs=1e-7)
    # loss_weight scales; no mask averages over all 4 pixels
    assert KDLoss(temperature=t, loss_weight=0.3)(
        STUDENT, TEACHER, valid_mask=VALID).item() == pytest.approx(
            0.3 * expected_mean, rel=1e-6)
    assert loss(STUDENT, TEACHER).item() == pytest.approx(
        sum(ce.values()) / 4, rel=1e-6)


def test_kd_equals_kl_plus_entropy():
    """CE(p, q) = KL(p || q) + H(p), with torch's kl_div as the reference."""
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64)
    teacher = 3 * torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64)
    t = 3.0
    p = torch.softmax(teacher / t, 1)
    log_q = torch.log_softmax(student / t, 1)
    kl = F.kl_div(log_q, p, reduction='none').sum(1)
    entropy = -(p * p.log()).sum(1)
    expected = (t * t * (kl + entropy)).mean()
    got = KDLoss(temperature=t)(student, teacher)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_kd_gradient_is_t_times_q_minus_p():
    """d/dz T^2 CE(p, softmax(z/T)) = T (q - p), averaged over valid pixels."""
    t = 2.0
    student = STUDENT.clone().double().requires_grad_(True)
    KDLoss(temperature=t)(
        student, TEACHER.double(), valid_mask=VALID).backward()
    sp, tp = _pixels(STUDENT), _pixels(TEACHER)
    for (y, x) in sp:
        p = _softmax([v / t for v in tp[(y, x)]])
        q = _softmax([v / t for v in sp[(y, x)]])
        for k in range(2):
            want = t * (q[k] - p[k]) / 3 if bool(VALID[0, y, x]) else 0.
            assert student.grad[0, k, y, x].item() == pytest.approx(
                want, abs=1e-9)
    # the teacher gets no gradient
    teacher = TEACHER.clone().requires_grad_(True)
    KDLoss(temperature=t)(STUDENT.clone().requires_grad_(True),
                          teacher).backward()
    assert teacher.grad is None


def test_kd_resizes_student_and_handles_empty_mask():
    g = torch.Generator().manual_seed(1)
    student = torch.randn(1, 3, 4, 6, generator=g, requires_grad=True)
    teacher = torch.randn(1, 3, 8, 12, generator=g)
    got = KDLoss(temperature=2.)(student, teacher)
    up = F.interpolate(student, size=(8, 12), mode='bilinear',
                       align_corners=False)
    assert got.item() == pytest.approx(KDLoss(temperature=2.)(
        up, teacher).item(), rel=1e-6)
    empty = torch.zeros(1, 8, 12, dtype=torch.bool)
    zero = KDLoss(temperature=2.)(student, teacher, valid_mask=empty)
    assert zero.item() == 0.
    zero.backward()
    assert torch.count_nonzero(student.grad) == 0


def test_kd_rejects_hard_labels_and_bad_args():
    with pytest.raises(ValueError, match='teacher logits'):
        KDLoss()(STUDENT, torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='number of classes'):
        KDLoss()(STUDENT, torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match='temperature'):
        KDLoss(temperature=0.)
    with pytest.raises(ValueError, match='reduction'):
        KDLoss(reduction='avg')
    assert KDLoss().loss_name == 'loss_kd'


# ---------------------------------------------------------------- Dice
LOGITS = torch.tensor([[[[2., 0.], [1., -1.]], [[0., 1.], [3., 2.]]]])
LABELS = torch.tensor([[[0, 1], [255, 1]]])


def _dice_by_hand(logits, labels, smooth, generalised, ignore=255):
    lp = _pixels(logits)
    k_num = logits.shape[1]
    inter, psum, tsum = [0.] * k_num, [0.] * k_num, [0.] * k_num
    for (y, x), v in lp.items():
        lab = int(labels[0, y, x])
        if lab == ignore:
            continue
        p = _softmax(v)
        for k in range(k_num):
            r = 1. if lab == k else 0.
            inter[k] += p[k] * r
            psum[k] += p[k]
            tsum[k] += r
    if not generalised:
        dice = [(2 * inter[k] + smooth) / (psum[k] + tsum[k] + smooth)
                for k in range(k_num)]
        return 1 - sum(dice) / k_num
    w = [1 / tsum[k]**2 if tsum[k] > 0 else None for k in range(k_num)]
    wmax = max(v for v in w if v is not None)
    w = [wmax if v is None else v for v in w]
    num = 2 * sum(w[k] * inter[k] for k in range(k_num)) + smooth
    den = sum(w[k] * (psum[k] + tsum[k]) for k in range(k_num)) + smooth
    return 1 - num / den


@pytest.mark.parametrize('smooth', [0., 1.])
@pytest.mark.parametrize('generalised', [False, True])
def test_dice_matches_hand_computation(smooth, generalised):
    loss = SoftDiceLoss(smooth=smooth, use_generalised_weights=generalised,
                        loss_weight=1.0)
    want = _dice_by_hand(LOGITS, LABELS, smooth, generalised)
    assert loss(LOGITS, LABELS).item() == pytest.approx(want, rel=1e-6)
    assert SoftDiceLoss(smooth=smooth, use_generalised_weights=generalised,
                        loss_weight=0.5)(LOGITS, LABELS).item() == \
        pytest.approx(0.5 * want, rel=1e-6)


def test_dice_ignore_masks_pixels_not_classes():
    """The ignored pixel has no effect and no gradient; both classes count."""
    logits = LOGITS.clone().requires_grad_(True)
    loss = SoftDiceLoss(smooth=1.)
    value = loss(logits, LABELS)
    value.backward()
    assert torch.all(logits.grad[0, :, 1, 0] == 0)
    assert torch.all(logits.grad[0, :, 0, 0] != 0)
    other = LOGITS.clone()
    other[0, :, 1, 0] = torch.tensor([-7., 9.])
    assert loss(other, LABELS).item() == pytest.approx(value.item(), rel=1e-7)
    # an explicit valid_mask masks the same way as the ignore label
    labels = LABELS.clone()
    labels[0, 1, 0] = 0
    mask = LABELS != 255
    assert loss(LOGITS, labels, valid_mask=mask).item() == pytest.approx(
        value.item(), rel=1e-7)
    # ignore_index override, as passed by stock mmseg heads
    labels[0, 1, 0] = 7
    assert SoftDiceLoss(smooth=1., ignore_index=3)(
        LOGITS, labels, ignore_index=7).item() == pytest.approx(
            value.item(), rel=1e-7)


def test_dice_generalised_absent_class_gets_max_weight():
    labels = torch.tensor([[[0, 0], [255, 0]]])  # class 1 absent
    want = _dice_by_hand(LOGITS, labels, 0., True)
    got = SoftDiceLoss(smooth=0., use_generalised_weights=True)(
        LOGITS, labels)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_dice_soft_target_equals_onehot_and_hand_value():
    onehot = torch.zeros(1, 2, 2, 2)
    for y in range(2):
        for x in range(2):
            lab = int(LABELS[0, y, x])
            if lab != 255:
                onehot[0, lab, y, x] = 1.
    mask = LABELS != 255
    loss = SoftDiceLoss(smooth=1.)
    assert loss(LOGITS, onehot, valid_mask=mask).item() == pytest.approx(
        loss(LOGITS, LABELS).item(), rel=1e-7)
    # genuinely soft target, by hand
    soft = torch.tensor([[[[.7, .2], [.5, .9]], [[.3, .8], [.5, .1]]]])
    lp, sp = _pixels(LOGITS), _pixels(soft)
    inter, psum, tsum = [0., 0.], [0., 0.], [0., 0.]
    for yx in lp:
        p = _softmax(lp[yx])
        for k in range(2):
            inter[k] += p[k] * sp[yx][k]
            psum[k] += p[k]
            tsum[k] += sp[yx][k]
    want = 1 - sum((2 * inter[k] + 1) / (psum[k] + tsum[k] + 1)
                   for k in range(2)) / 2
    assert loss(LOGITS, soft).item() == pytest.approx(want, rel=1e-6)


def test_dice_all_ignored_is_zero_with_graph():
    logits = LOGITS.clone().requires_grad_(True)
    labels = torch.full((1, 2, 2), 255)
    for generalised in (False, True):
        for smooth in (0., 1.):
            value = SoftDiceLoss(smooth=smooth,
                                 use_generalised_weights=generalised)(
                                     logits, labels)
            assert value.item() == 0.
            value.backward()
            assert torch.isfinite(logits.grad).all()


def test_dice_rejects_bad_inputs():
    with pytest.raises(ValueError, match='labels must be in'):
        SoftDiceLoss()(LOGITS, torch.tensor([[[0, 2], [1, 1]]]))
    with pytest.raises(ValueError, match='soft target'):
        SoftDiceLoss()(LOGITS, torch.zeros(1, 3, 2, 2))
    with pytest.raises(NotImplementedError):
        SoftDiceLoss()(LOGITS, LABELS, weight=torch.ones(1, 2, 2))
    assert SoftDiceLoss().loss_name == 'loss_dice'
