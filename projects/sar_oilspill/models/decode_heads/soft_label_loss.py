"""Soft labels (teacher logits) as a training target of any mmseg decode head.

A training sample may carry a hard label ``gt_sem_seg`` (``ignore_index`` where
unlabelled) and/or soft labels ``gt_soft_logits``: a :class:`PixelData` with
``data`` (K, H, W), the teacher's per-pixel logits, and ``valid`` (1, H, W)
bool, the pixels that carry them (``SoftLabelSegDataPreProcessor`` pads both
with the image and marks the padding invalid; a sample without ``valid`` is
valid on its whole extent).

:class:`SegTargets` stacks a batch into per-pixel targets, and every loss of a
decode head is called with one of them through :meth:`SegTargets.loss`, which
dispatches on the loss's ``soft_target`` attribute:

* no attribute (mmseg's losses, e.g. ``CrossEntropyLoss``): the mmseg call
  ``loss(logits, labels, weight=seg_weight, ignore_index=ignore_index)`` on
  the hard labels; the valid mask is the ``ignore_index`` convention (a
  class-weighted ``CrossEntropyLoss`` gets the ``avg_factor`` mmseg would fail
  to compute on ignored pixels: :func:`class_weighted_ce_avg_factor`).
* ``'logits'`` (:class:`KDLoss`): ``loss(logits, teacher_logits,
  valid_mask=soft_valid)``.
* ``'probs'`` (:class:`SoftDiceLoss`): ``loss(logits, probs, valid_mask=valid)``
  with, per pixel, the one-hot hard label where there is one, otherwise the
  teacher's probabilities ``softmax(teacher_logits / T)`` (T is the loss's
  ``soft_temperature``, default 1: the teacher's own estimate), otherwise
  masked.

:class:`SoftLabelLossMixin` is mmseg's ``BaseDecodeHead.loss_by_feat`` (same
loop, same resize, same sampler, same ``acc_seg``) on these targets.
:func:`enable_soft_labels` gives any decode head that uses mmseg's
``loss_by_feat`` (``FCNHead``, ``SegformerHead``, ``DepthwiseSeparableASPPHead``,
...) the mixin without touching its code or its parameter names: the instance's
class becomes a subclass ``SoftLabel<Head>(SoftLabelLossMixin, <Head>)``.
``SoftLabelEncoderDecoder`` does this for its decode head.
"""
import sys
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss, accuracy
from mmseg.models.utils import resize
from mmseg.utils import SampleList

SOFT_TARGETS = ('logits', 'probs')


def sample_name(sample, n: int) -> str:
    """The image path of a data sample, or its batch position."""
    return sample.metainfo.get('img_path', f'batch sample {n}')


def check_soft_logits(sample, n: int, num_classes: int,
                      max_size: Tuple[int, int], who: str) -> None:
    """Raise a ValueError naming the sample if its ``gt_soft_logits`` is malformed.

    Args:
        sample (SegDataSample): A sample carrying ``gt_soft_logits``.
        n (int): Its position in the batch (for the message).
        num_classes (int): Expected number of channels ``K``.
        max_size (tuple[int, int]): (H, W) the soft labels may not exceed.
        who (str): Prefix of the message.
    """
    soft = sample.gt_soft_logits
    t = soft.get('data')
    where = sample_name(sample, n)
    if not isinstance(t, Tensor) or t.dim() != 3 or not t.is_floating_point() \
            or t.shape[0] != num_classes:
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        dtype = t.dtype if isinstance(t, Tensor) else None
        raise ValueError(
            f'{who}: gt_soft_logits of {where} must be a float tensor '
            f'({num_classes}, H, W) of teacher logits (num_classes={num_classes}); '
            f'got dtype {dtype}, shape {shape}')
    if t.shape[-2] > max_size[0] or t.shape[-1] > max_size[1]:
        raise ValueError(
            f'{who}: gt_soft_logits of {where} is {tuple(t.shape[-2:])}, larger '
            f'than the batch size {tuple(max_size)}')
    valid = soft.get('valid')
    if valid is not None and (not isinstance(valid, Tensor)
                              or tuple(valid.shape) != (1, *t.shape[-2:])):
        shape = tuple(valid.shape) if isinstance(valid, Tensor) else valid
        raise ValueError(
            f'{who}: gt_soft_logits.valid of {where} must be (1, '
            f'{t.shape[-2]}, {t.shape[-1]}) like its logits; got {shape}')


def pad_soft_logits(soft, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Pad one sample's soft labels at the bottom/right (as mmseg pads images).

    Args:
        soft (PixelData): ``data`` (K, h, w) and optionally ``valid`` (1, h, w).
        size (tuple[int, int]): (H, W) with ``H >= h``, ``W >= w``.

    Returns:
        tuple[Tensor, Tensor]: logits (K, H, W), 0 on the padding, and valid
        (1, H, W) bool, False on the padding.
    """
    t = soft.data
    h, w = t.shape[-2:]
    valid = soft.get('valid')
    valid = torch.ones((1, h, w), dtype=torch.bool, device=t.device) \
        if valid is None else valid.bool()
    pad = (0, size[1] - w, 0, size[0] - h)
    if pad == (0, 0, 0, 0):
        return t, valid
    return F.pad(t, pad, value=0.), F.pad(valid, pad, value=False)


class SegTargets:
    """Per-pixel training targets of a batch, at the (padded) label size.

    Build with :meth:`from_data_samples`. Attributes:

    * ``labels`` (N, H, W) long: hard labels, ``ignore_index`` where none;
    * ``soft_logits`` (N, K, H, W) float or None (no sample has soft labels):
      teacher logits, 0 where none;
    * ``soft_valid`` (N, H, W) bool: pixels that carry teacher logits;
    * ``ignore_index``, ``num_classes``.
    """

    def __init__(self, labels: Tensor, soft_logits: Optional[Tensor],
                 soft_valid: Tensor, num_classes: int,
                 ignore_index: int) -> None:
        self.labels = labels
        self.soft_logits = soft_logits
        self.soft_valid = soft_valid
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._probs = {}  # temperature -> probs

    @classmethod
    def from_data_samples(cls, batch_data_samples: SampleList,
                          num_classes: int, ignore_index: int,
                          who: str = 'decode head') -> 'SegTargets':
        """Stack ``gt_sem_seg`` and ``gt_soft_logits`` of a batch.

        Every sample needs ``gt_sem_seg`` (SoftLabelEncoderDecoder gives
        soft-only samples an all-ignore map). Soft labels smaller than the
        label size (samples that did not go through
        ``SoftLabelSegDataPreProcessor``) are padded at the bottom/right and
        the padding is invalid.
        """
        for n, sample in enumerate(batch_data_samples):
            if 'gt_sem_seg' not in sample:
                raise ValueError(
                    f'{who}: {sample_name(sample, n)} has no gt_sem_seg; use '
                    'SoftLabelEncoderDecoder, which adds an all-ignore map to '
                    'soft-only samples')
        labels = torch.stack([s.gt_sem_seg.data for s in batch_data_samples]
                             ).squeeze(1)  # (N, H, W)
        known = labels[labels != ignore_index]
        if known.numel() and (int(known.min()) < 0
                              or int(known.max()) >= num_classes):
            raise ValueError(
                f'{who}: gt_sem_seg values must be in [0, {num_classes}) or '
                f'{ignore_index}; got [{int(known.min())}, {int(known.max())}]')
        size = tuple(labels.shape[-2:])
        soft = [(n, s) for n, s in enumerate(batch_data_samples)
                if 'gt_soft_logits' in s]
        soft_valid = torch.zeros_like(labels, dtype=torch.bool)
        soft_logits = None
        if soft:
            dtype = torch.float32
            for n, s in soft:
                check_soft_logits(s, n, num_classes, size, who)
                dtype = torch.promote_types(dtype, s.gt_soft_logits.data.dtype)
            soft_logits = labels.new_zeros((labels.shape[0], num_classes) + size,
                                           dtype=dtype)
            for n, s in soft:
                t, valid = pad_soft_logits(s.gt_soft_logits, size)
                soft_logits[n] = t.to(dtype)
                soft_valid[n] = valid[0]
        return cls(labels, soft_logits, soft_valid, num_classes, ignore_index)

    @property
    def size(self) -> Tuple[int, int]:
        """(H, W) of the targets."""
        return tuple(self.labels.shape[-2:])

    @property
    def hard_valid(self) -> Tensor:
        """(N, H, W) bool: pixels with a hard label."""
        return self.labels != self.ignore_index

    @property
    def valid(self) -> Tensor:
        """(N, H, W) bool: pixels with a hard or a soft label."""
        return self.hard_valid | self.soft_valid

    def probs(self, temperature: float = 1.0) -> Tensor:
        """(N, K, H, W) target probabilities: hard one-hot, else the teacher's
        ``softmax(logits / temperature)`` where it has soft labels, else 0."""
        temperature = float(temperature)
        if temperature not in self._probs:
            hard = self.hard_valid
            labels = torch.where(hard, self.labels, torch.zeros_like(self.labels))
            probs = F.one_hot(labels.long(), self.num_classes).permute(
                0, 3, 1, 2).float() * hard.unsqueeze(1)
            if self.soft_logits is not None:
                use = (self.soft_valid & ~hard).unsqueeze(1)
                teacher = F.softmax(self.soft_logits.float() / temperature,
                                    dim=1)
                probs = torch.where(use, teacher, probs)
            self._probs[temperature] = probs
        return self._probs[temperature]

    def acc_labels(self) -> Tensor:
        """(N, H, W) labels for ``acc_seg``: hard label, else the teacher's
        argmax where it has soft labels, else ``ignore_index``."""
        if self.soft_logits is None:
            return self.labels
        use = self.soft_valid & ~self.hard_valid
        return torch.where(use, self.soft_logits.argmax(dim=1), self.labels)

    def target(self, kind: str,
               temperature: float = 1.0) -> Tuple[Tensor, Tensor]:
        """(target, valid mask) of a soft-label loss.

        Args:
            kind (str): ``'logits'`` (teacher logits, pixels that carry them)
                or ``'probs'`` (see :meth:`probs`, pixels with any label).
            temperature (float): Of the teacher's softmax in ``'probs'``.
        """
        if kind == 'logits':
            logits = self.soft_logits
            if logits is None:  # no soft sample: all masked, the loss is 0
                logits = self.labels.new_zeros(
                    (self.labels.shape[0], self.num_classes) + self.size,
                    dtype=torch.float32)
            return logits, self.soft_valid
        if kind == 'probs':
            return self.probs(temperature), self.valid
        raise ValueError(f'soft_target={kind!r}; expected one of {SOFT_TARGETS}')

    def loss(self, loss_fn: nn.Module, seg_logits: Tensor,
             weight: Optional[Tensor] = None) -> Tensor:
        """Call one loss with the target it declares (module docstring).

        Args:
            loss_fn (nn.Module): The loss.
            seg_logits (Tensor): (N, K, H, W), already at the target size.
            weight (Tensor, optional): Pixel weights of mmseg's sampler; only
                hard-label losses take them.
        """
        kind = getattr(loss_fn, 'soft_target', None)
        if kind is None:
            extra = {}
            avg_factor = class_weighted_ce_avg_factor(
                loss_fn, self.labels, self.ignore_index)
            if avg_factor is not None:
                extra['avg_factor'] = avg_factor
            return loss_fn(seg_logits, self.labels, weight=weight,
                           ignore_index=self.ignore_index, **extra)
        if kind not in SOFT_TARGETS:
            raise ValueError(f'{type(loss_fn).__name__}.soft_target={kind!r}; '
                             f'expected one of {SOFT_TARGETS} or no attribute')
        target, valid = self.target(
            kind, getattr(loss_fn, 'soft_temperature', 1.0))
        return loss_fn(seg_logits, target, valid_mask=valid)


def class_weighted_ce_avg_factor(loss_fn: nn.Module, labels: Tensor,
                                 ignore_index: int) -> Optional[Tensor]:
    """The mean's denominator of mmseg's class-weighted CE where mmseg fails.

    mmseg's ``cross_entropy`` (1.2.2) computes the denominator of a
    class-weighted mean as ``class_weight[label]`` summed over *every* pixel,
    so a label map holding ``ignore_index`` (soft-label samples, padding) makes
    it index ``class_weight[255]`` and raise an ``IndexError``
    (open-mmlab/mmsegmentation#3734, #3831). Where that would happen, this
    returns the denominator mmseg means with ``avg_non_ignore=True``:
    ``class_weight[label]`` summed over the non-ignored pixels, which makes the
    loss PyTorch's ``F.cross_entropy(weight=class_weight,
    ignore_index=ignore_index)`` (times ``loss_weight``). Otherwise ``None``:
    mmseg's own computation, unchanged.

    Raises:
        ValueError: ``avg_non_ignore=False`` with class weights and ignored
            pixels: mmseg's mean over all pixels has no weight for an ignored
            one, and guessing one would silently change the loss.
    """
    if (not isinstance(loss_fn, CrossEntropyLoss) or loss_fn.use_sigmoid
            or loss_fn.use_mask or loss_fn.class_weight is None
            or loss_fn.reduction != 'mean'):
        return None
    valid = labels != ignore_index
    if bool(valid.all()):
        return None
    if not loss_fn.avg_non_ignore:
        raise ValueError(
            f'CrossEntropyLoss(class_weight={list(loss_fn.class_weight)}, '
            f'avg_non_ignore=False) on labels with ignore_index={ignore_index} '
            f'pixels (soft-label samples or padding): mmseg cannot average it '
            f'(open-mmlab/mmsegmentation#3734); set avg_non_ignore=True in '
            f'loss_decode')
    class_weight = torch.as_tensor(loss_fn.class_weight, dtype=torch.float32,
                                   device=labels.device)
    safe = torch.where(valid, labels, torch.zeros_like(labels)).long()
    return (class_weight[safe] * valid).sum()


def loss_modules(head: nn.Module) -> List[nn.Module]:
    """The losses of a decode head's ``loss_decode`` as a list."""
    losses = head.loss_decode
    return list(losses) if isinstance(losses, nn.ModuleList) else [losses]


def uses_soft_labels(head: nn.Module) -> bool:
    """Whether some loss of the head trains on soft labels."""
    return isinstance(head, SoftLabelLossMixin) and any(
        getattr(fn, 'soft_target', None) is not None for fn in loss_modules(head))


class SoftLabelLossMixin:
    """``loss_by_feat`` of mmseg's ``BaseDecodeHead`` on hard and soft labels.

    Same loop as mmseg: resize the logits to the label size, optional pixel
    sampler on the hard labels, one entry per ``loss_name`` (summed when
    repeated), ``acc_seg``. Each loss gets its target through
    :meth:`SegTargets.loss`; ``acc_seg`` is measured against
    :meth:`SegTargets.acc_labels`. On a batch of hard labels only it returns
    what mmseg returns (soft-label losses then give an exact 0 with the graph
    kept).
    """

    supports_soft_labels = True

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Compute the losses of the head.

        Args:
            seg_logits (Tensor): Head output (N, K, h, w).
            batch_data_samples (list[SegDataSample]): ``gt_sem_seg`` (1, H, W)
                each, optionally ``gt_soft_logits`` (module docstring).

        Returns:
            dict[str, Tensor]: One entry per ``loss_name`` and ``acc_seg``.
        """
        who = type(self).__name__
        losses_decode = loss_modules(self)
        if any(getattr(fn, 'soft_target', None) is not None
               for fn in losses_decode) and self.out_channels != self.num_classes:
            raise ValueError(
                f'{who}: soft-label losses need softmax logits, out_channels == '
                f'num_classes; got out_channels={self.out_channels}, '
                f'num_classes={self.num_classes} (use_sigmoid?)')
        targets = SegTargets.from_data_samples(
            batch_data_samples, self.num_classes, self.ignore_index, who=who)
        loss = dict()
        seg_logits = resize(
            input=seg_logits,
            size=targets.size,
            mode='bilinear',
            align_corners=self.align_corners)
        seg_weight = None
        if self.sampler is not None:
            seg_weight = self.sampler.sample(seg_logits,
                                             targets.labels.unsqueeze(1))
        for loss_decode in losses_decode:
            value = targets.loss(loss_decode, seg_logits, weight=seg_weight)
            name = loss_decode.loss_name
            loss[name] = loss[name] + value if name in loss else value
        loss['acc_seg'] = accuracy(
            seg_logits, targets.acc_labels(), ignore_index=self.ignore_index)
        return loss


_SOFT_LABEL_CLASSES: Dict[type, type] = {}


def soft_label_class(cls: type) -> type:
    """``SoftLabel<cls>``: ``cls`` with :class:`SoftLabelLossMixin` in front.

    Created once per class and made an attribute of this module, so that
    instances pickle (the class is found again by module and name).
    """
    if issubclass(cls, SoftLabelLossMixin):
        return cls
    if cls not in _SOFT_LABEL_CLASSES:
        name = f'SoftLabel{cls.__name__}'
        module = sys.modules[__name__]
        if hasattr(module, name):  # same name, other class (another module)
            name = f'SoftLabel{cls.__module__.replace(".", "_")}_{cls.__name__}'
        new = type(name, (SoftLabelLossMixin, cls), dict(
            __module__=__name__, __qualname__=name,
            __doc__=f'{cls.__name__} trained on hard and soft labels '
                    '(SoftLabelLossMixin.loss_by_feat).'))
        setattr(module, name, new)
        _SOFT_LABEL_CLASSES[cls] = new
    return _SOFT_LABEL_CLASSES[cls]


def enable_soft_labels(head: nn.Module) -> bool:
    """Give a decode head :class:`SoftLabelLossMixin`'s ``loss_by_feat``, in place.

    Only heads that use mmseg's own ``BaseDecodeHead.loss_by_feat`` are
    changed (their loss is then the same on hard labels); a head with its own
    ``loss_by_feat`` (e.g. ``PointHead``) is left alone.

    Args:
        head (nn.Module): A built decode head.

    Returns:
        bool: Whether the head now supports soft labels.
    """
    if isinstance(head, SoftLabelLossMixin):
        return True
    if not isinstance(head, BaseDecodeHead) or \
            type(head).loss_by_feat is not BaseDecodeHead.loss_by_feat:
        return False
    head.__class__ = soft_label_class(type(head))
    return True
