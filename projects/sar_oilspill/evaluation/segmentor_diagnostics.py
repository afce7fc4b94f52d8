"""Why does a segmentor miss a class? Streaming per-class logit statistics and dead-unit counts.

Two failures have met this project on real data (README, "When things go wrong"): a class that is never predicted
although the model ranks its pixels well (the ship class of the embedded demo; the seed-2 DAKD student of the
90-tile study, "background everywhere"). Both came from the same place: the decode head's last ReLU stage was zero
at every channel on most pixels of the class, so the logits there were the classifier's bias alone, and a dead ReLU
passes no gradient back. These two accumulators measure that on any mmseg segmentor, image by image, with constant
memory:

* :class:`ClassMarginStats` — per class ``c``, the margin ``z_c - max_{k != c} z_k`` of its logits over all labelled
  pixels, in fixed histograms (positives: pixels labelled ``c``; negatives: the others). From them: the pixel shares
  of the class in the labels and in the argmax prediction, its IoU, the one-vs-rest ROC AUC of the margin, the best
  IoU any threshold on the margin would give (and that threshold), and the margin's maximum and median on the
  class's own pixels (of equally good thresholds, the one nearest 0, the argmax's). A class with AUC near 1 but IoU near 0 is ranked correctly and still never wins the argmax.
* :class:`ActivationMonitor` — forward hooks on the activation modules (ReLU, LeakyReLU, ...) of a module (the
  decode head); per call, the share of pixels at which *every* channel of the activation's output is <= 0 (inactive:
  zero after ReLU, a slope-scaled negative after LeakyReLU), overall and per labelled class, the activation map
  mapped back to the labels' resolution (nearest) the way mmseg maps its logits (crop the bottom/right padding,
  resize to the original shape).

Thresholded IoU and AUC come from histograms with bins of ``1 / bins_per_unit`` logit units over
``[-margin_range, margin_range]`` (margins outside are clipped into the end bins): exact for margins on the bin
grid, within one bin width otherwise.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .oilspill_metric import confusion_to_metrics

#: activation modules whose outputs :class:`ActivationMonitor` watches
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish)


def class_margins(logits: torch.Tensor) -> torch.Tensor:
    """``(K, ...)`` logits -> ``(K, ...)`` margins ``z_c - max_{k != c} z_k`` (> 0 exactly where ``c`` is the strict
    argmax). Needs K >= 2."""
    if logits.dim() < 1 or logits.shape[0] < 2:
        raise ValueError(f'class_margins: expected (K, ...) logits with K >= 2, got shape {tuple(logits.shape)}')
    top2 = logits.topk(2, dim=0).values
    best_other = torch.where(logits == top2[0:1], top2[1:2], top2[0:1])
    # ties at the top: both classes get margin 0 (and torch.argmax picks the first)
    return logits - best_other


class ClassMarginStats:
    """Streaming per-class margin histograms of a segmentor's logits against labels (see the module docstring).

    Args:
        num_classes: K.
        class_names: Names for the results (default ``'0'``, ``'1'``, ...).
        ignore_index: Label value left out (mmseg's 255).
        margin_range: Histogram range ``[-margin_range, margin_range]`` in logit units.
        bins_per_unit: Histogram bins per logit unit.
    """

    def __init__(self, num_classes: int, class_names: Optional[Sequence[str]] = None, ignore_index: int = 255,
                 margin_range: float = 40.0, bins_per_unit: int = 100) -> None:
        if num_classes < 2:
            raise ValueError(f'ClassMarginStats: num_classes must be >= 2, got {num_classes}')
        if margin_range <= 0 or bins_per_unit < 1:
            raise ValueError(f'ClassMarginStats: margin_range {margin_range} must be > 0 and bins_per_unit '
                             f'{bins_per_unit} >= 1')
        self.num_classes = num_classes
        self.class_names = [str(k) for k in range(num_classes)] if class_names is None else list(class_names)
        if len(self.class_names) != num_classes:
            raise ValueError(f'ClassMarginStats: {len(self.class_names)} class names for {num_classes} classes')
        self.ignore_index = ignore_index
        self.margin_range = float(margin_range)
        self.bins_per_unit = int(bins_per_unit)
        self.num_bins = int(round(2 * margin_range * bins_per_unit))
        self.pos = np.zeros((num_classes, self.num_bins), np.int64)
        self.neg = np.zeros((num_classes, self.num_bins), np.int64)
        self.label_count = np.zeros(num_classes, np.int64)
        self.pred_count = np.zeros(num_classes, np.int64)
        self.intersection = np.zeros(num_classes, np.int64)
        self.pos_max = np.full(num_classes, -np.inf)
        self.num_images = 0
        self.num_pixels = 0

    def bin_index(self, margins: torch.Tensor) -> torch.Tensor:
        """Bin of each margin: ``floor((m + range) * bins_per_unit)``, clipped into ``[0, num_bins - 1]``."""
        idx = torch.floor((margins.double() + self.margin_range) * self.bins_per_unit).long()
        return idx.clamp_(0, self.num_bins - 1)

    def bin_lower_edges(self) -> np.ndarray:
        return np.arange(self.num_bins) / self.bins_per_unit - self.margin_range

    def update(self, logits: torch.Tensor, label: torch.Tensor) -> None:
        """Add one image: ``logits`` ``(K, H, W)``, ``label`` ``(H, W)`` (or ``(1, H, W)``) of class indices."""
        logits = torch.as_tensor(logits).detach().float().cpu()
        label = torch.as_tensor(label).detach().cpu().long()
        if label.dim() == 3 and label.shape[0] == 1:
            label = label[0]
        if logits.dim() != 3 or logits.shape[0] != self.num_classes or label.shape != logits.shape[1:]:
            raise ValueError(f'ClassMarginStats.update: expected logits ({self.num_classes}, H, W) and label (H, W), '
                             f'got {tuple(logits.shape)} and {tuple(label.shape)}')
        if not torch.isfinite(logits).all():
            raise ValueError('ClassMarginStats.update: the logits hold NaN or Inf')
        valid = label != self.ignore_index
        bad = valid & ((label < 0) | (label >= self.num_classes))
        if bad.any():
            raise ValueError(f'ClassMarginStats.update: label values {torch.unique(label[bad]).tolist()} outside '
                             f'0..{self.num_classes - 1} (ignore_index {self.ignore_index})')
        lab = label[valid]
        margins = class_margins(logits)[:, valid]  # (K, P)
        pred = logits.argmax(0)[valid]
        k = self.num_classes
        self.label_count += np.bincount(lab.numpy(), minlength=k)
        self.pred_count += np.bincount(pred.numpy(), minlength=k)
        self.intersection += np.bincount(lab[pred == lab].numpy(), minlength=k)
        bins = self.bin_index(margins)
        for c in range(k):
            is_c = lab == c
            self.pos[c] += np.bincount(bins[c][is_c].numpy(), minlength=self.num_bins)
            self.neg[c] += np.bincount(bins[c][~is_c].numpy(), minlength=self.num_bins)
            if is_c.any():
                self.pos_max[c] = max(self.pos_max[c], float(margins[c][is_c].max()))
        self.num_images += 1
        self.num_pixels += int(valid.sum())

    def class_result(self, c: int) -> Dict:
        pos, neg = self.pos[c].astype(np.float64), self.neg[c].astype(np.float64)
        n_pos, n_neg = pos.sum(), neg.sum()
        union = self.label_count + self.pred_count - self.intersection
        iou = confusion_to_metrics(self.intersection, union, self.pred_count, self.label_count)['IoU'][c]
        res = dict(label_share=self.label_count[c] / max(self.num_pixels, 1),
                   pred_share=self.pred_count[c] / max(self.num_pixels, 1),
                   iou=float(iou),
                   auc=float('nan'), best_threshold=float('nan'), best_threshold_iou=float('nan'),
                   margin_max_on_class=float(self.pos_max[c]) if n_pos else float('nan'),
                   margin_median_on_class=float('nan'))
        if n_pos:
            # predict c iff margin >= lower edge of bin b: TP = positives in bins >= b, FP = negatives there
            tp = np.cumsum(pos[::-1])[::-1]
            fp = np.cumsum(neg[::-1])[::-1]
            iou = tp / (n_pos + fp)
            edges = self.bin_lower_edges()
            best = np.flatnonzero(iou == iou.max())
            b = int(best[np.argmin(np.abs(edges[best]))])  # of equally good thresholds, the one nearest 0
            res.update(best_threshold=float(edges[b]), best_threshold_iou=float(iou[b]))
            mid = int(np.searchsorted(np.cumsum(pos), n_pos / 2.0))
            res['margin_median_on_class'] = float(self.bin_lower_edges()[mid] + 0.5 / self.bins_per_unit)
            if n_neg:
                neg_below = np.cumsum(neg) - neg  # negatives in lower bins; same bin counts a half (a tie)
                res['auc'] = float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))
        return res

    def results(self) -> Dict:
        return dict(num_images=self.num_images, num_pixels=self.num_pixels,
                    margin_bin_width=1.0 / self.bins_per_unit, margin_range=self.margin_range,
                    classes={name: self.class_result(c) for c, name in enumerate(self.class_names)})


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, ACTIVATIONS)


class ActivationMonitor:
    """Counts, per activation call inside ``module``, the pixels where every output channel is <= 0.

    Use as a context manager around the forward passes; after each batch call :meth:`update` with the labels
    and the metainfo of the batch's samples, then :meth:`results`. Calls are named ``<module name>`` (``#<k>`` from
    the second call of a module within one forward on), in the order of the forward pass; only 4-D outputs
    ``(N, C, h, w)`` count.

    Args:
        module: The module whose activations are watched (a decode head).
        num_classes, class_names, ignore_index: As :class:`ClassMarginStats`.
    """

    def __init__(self, module: nn.Module, num_classes: int, class_names: Optional[Sequence[str]] = None,
                 ignore_index: int = 255) -> None:
        self.module = module
        self.num_classes = num_classes
        self.class_names = [str(k) for k in range(num_classes)] if class_names is None else list(class_names)
        self.ignore_index = ignore_index
        self.names = {m: n for n, m in module.named_modules() if _is_activation(m)}
        self._handles: List = []
        self._batch: List[Tuple[str, torch.Tensor, int]] = []  # (call name, (N, h, w) inactive mask, channels)
        self.order: List[str] = []
        self.stats: Dict[str, Dict] = {}

    def __enter__(self) -> 'ActivationMonitor':
        for m in self.names:
            self._handles.append(m.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, module: nn.Module, inputs, output) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            return
        name = self.names[module] or '<module>'
        seen = sum(1 for n, _, _ in self._batch if n == name or n.startswith(name + '#'))
        call = name if seen == 0 else f'{name}#{seen}'
        self._batch.append((call, (output.detach() <= 0).all(dim=1).cpu(), int(output.shape[1])))

    def reset_batch(self) -> None:
        self._batch = []

    def update(self, labels: Sequence[torch.Tensor], metainfos: Sequence[Dict], input_shape: Sequence[int]) -> None:
        """Count the last forward's inactive pixels against the samples' labels and forget that forward.

        Args:
            labels: Per sample, ``(H, W)`` or ``(1, H, W)`` class indices at the original image size.
            metainfos: Per sample, mmseg metainfo with ``img_shape`` (before padding) and ``ori_shape``.
            input_shape: ``(H_in, W_in)`` of the batch fed to the network (padded at the bottom/right).
        """
        batch, self._batch = self._batch, []
        for call, inactive, channels in batch:
            if inactive.shape[0] != len(labels):
                raise ValueError(f'ActivationMonitor: {call} saw a batch of {inactive.shape[0]}, '
                                 f'{len(labels)} labels given (slide inference is not supported)')
            st = self.stats.get(call)
            if st is None:
                if call not in self.order:
                    self.order.append(call)
                st = self.stats[call] = dict(channels=channels, resolution=list(inactive.shape[1:]),
                                             inactive=0, pixels=0,
                                             class_inactive=np.zeros(self.num_classes, np.int64),
                                             class_pixels=np.zeros(self.num_classes, np.int64))
            full = F.interpolate(inactive[:, None].float(), size=tuple(input_shape), mode='nearest')
            for i, (label, meta) in enumerate(zip(labels, metainfos)):
                label = torch.as_tensor(label).cpu().long()
                if label.dim() == 3:
                    label = label[0]
                h, w = meta['img_shape'][:2]
                m = full[i:i + 1, :, :h, :w]
                m = F.interpolate(m, size=tuple(label.shape), mode='nearest')[0, 0] > 0.5
                valid = label != self.ignore_index
                st['inactive'] += int(m[valid].sum())
                st['pixels'] += int(valid.sum())
                lab = label[valid]
                st['class_pixels'] += np.bincount(lab.numpy(), minlength=self.num_classes)[:self.num_classes]
                st['class_inactive'] += np.bincount(lab[m[valid]].numpy(),
                                                    minlength=self.num_classes)[:self.num_classes]

    def results(self) -> List[Dict]:
        out = []
        for call in self.order:
            st = self.stats[call]
            per_class = {name: (st['class_inactive'][c] / st['class_pixels'][c] if st['class_pixels'][c]
                                else float('nan')) for c, name in enumerate(self.class_names)}
            out.append(dict(name=call, channels=st['channels'], resolution=st['resolution'],
                            inactive_share=st['inactive'] / max(st['pixels'], 1), inactive_share_by_class=per_class))
        return out


def verdicts(margin_results: Dict, activations: Iterable[Dict], iou_gap: float = 0.10,
             inactive_share: float = 0.5) -> List[str]:
    """Plain-language findings from :meth:`ClassMarginStats.results` and :meth:`ActivationMonitor.results`.

    A class is flagged when it is labelled but predicted on less than a tenth of its labelled share, or when a
    threshold on its margin would raise its IoU by more than ``iou_gap``; the last watched activation is flagged for
    a class when it is inactive at every channel on more than ``inactive_share`` of the class's pixels.
    """
    lines = []
    acts = list(activations)
    last = acts[-1] if acts else None
    for name, r in margin_results['classes'].items():
        if not r['label_share'] > 0:
            continue
        starved = r['pred_share'] < 0.1 * r['label_share']
        gap = r['best_threshold_iou'] - (r['iou'] if np.isfinite(r['iou']) else 0.0)
        if not (starved or gap > iou_gap):
            continue
        what = 'is (almost) never predicted' if starved else 'is mis-calibrated (its argmax is not its best threshold)'
        lines.append(f'class {name!r} {what}: {100 * r["pred_share"]:.2f} % of the pixels predicted against '
                     f'{100 * r["label_share"]:.2f} % labelled, IoU {100 * (r["iou"] if np.isfinite(r["iou"]) else 0):.2f}; '
                     f'its pixels are ranked with AUC {r["auc"]:.3f}, and a threshold of {r["best_threshold"]:+.2f} '
                     f'on its margin would give IoU {100 * r["best_threshold_iou"]:.2f} (its margin on its own pixels: '
                     f'max {r["margin_max_on_class"]:+.3f}, median {r["margin_median_on_class"]:+.3f})')
        if last is not None:
            share = last['inactive_share_by_class'].get(name, float('nan'))
            if share > inactive_share:
                lines.append(f'  dead units: the last activation of the head ({last["name"]}, {last["channels"]} '
                             f'channels) is <= 0 at every channel on {100 * share:.1f} % of the {name!r} pixels '
                             f'({100 * last["inactive_share"]:.1f} % of all pixels): there the logits are the '
                             f'classifier bias alone, and a ReLU passes no gradient back; a LeakyReLU decoder '
                             f'kept a gradient there in both such cases this project met (README, "When things go '
                             f'wrong")')
    return lines
