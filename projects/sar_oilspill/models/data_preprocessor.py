"""mmseg's SegDataPreProcessor that pads soft labels (teacher logits) with the image."""
from typing import Any, Dict

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmengine.structures import PixelData

from .decode_heads.soft_label_loss import check_soft_logits, pad_soft_logits


@MODELS.register_module()
class SoftLabelSegDataPreProcessor(SegDataPreProcessor):
    """:class:`SegDataPreProcessor` that also pads ``gt_soft_logits``.

    In training, mmseg pads every image and its ``gt_sem_seg`` at the
    bottom/right to the batch size (``size`` / ``size_divisor``). This
    preprocessor pads each sample's ``gt_soft_logits`` the same way: ``data``
    (K, h, w) with 0 and ``valid`` (1, h, w) with False (a sample without
    ``valid`` is valid on its own extent), so every soft label of the batch
    has the padded size and its padding is masked out of the losses.
    Arguments and everything else are :class:`SegDataPreProcessor`'s; at test
    time nothing changes (soft labels are not evaluated).
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if training and self.batch_augments is not None and any(
                'gt_soft_logits' in s for s in data.get('data_samples') or []):
            raise NotImplementedError(
                'SoftLabelSegDataPreProcessor: batch_augments do not move gt_soft_logits; '
                'set batch_augments=None for soft-label training')
        out = super().forward(data, training)
        if not training:
            return out
        size = tuple(out['inputs'].shape[-2:])
        for n, sample in enumerate(out['data_samples']):
            if 'gt_soft_logits' not in sample:
                continue
            t = sample.gt_soft_logits.get('data')
            num_classes = t.shape[0] if getattr(t, 'dim', lambda: 0)() == 3 else -1  # K: the segmentor checks
            check_soft_logits(sample, n, num_classes, size, type(self).__name__)
            logits, valid = pad_soft_logits(sample.gt_soft_logits, size)
            sample.gt_soft_logits = PixelData(data=logits, valid=valid)
        return out
