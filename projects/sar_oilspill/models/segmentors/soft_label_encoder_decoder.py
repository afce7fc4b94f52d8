"""Encoder-decoder that trains on hard labels, soft labels, or a mix."""
import torch
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from ..decode_heads.soft_label_loss import (check_soft_logits, enable_soft_labels, loss_modules, sample_name,
                                            uses_soft_labels)


@MODELS.register_module()
class SoftLabelEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` whose training batches may carry soft labels.

    Every data sample has either or both of:

    * ``gt_sem_seg``: PixelData, LongTensor (1, H, W), 255 = ignore (real
      data; for synthetic soft-label samples all 255, or the teacher's argmax
      in the hard-label ablation);
    * ``gt_soft_logits``: PixelData with ``data`` FloatTensor (K, H, W), the
      teacher's per-pixel logits (synthetic D_aug samples), and optionally
      ``valid`` BoolTensor (1, H, W), the pixels that carry them
      (``PackSegInputsWithSoftLabels`` and ``SoftLabelSegDataPreProcessor``
      set it).

    The decode head can be any mmseg head that uses mmseg's
    ``BaseDecodeHead.loss_by_feat`` (``SegformerHead``,
    ``DepthwiseSeparableASPPHead``, ``FCNHead``, ...), configured as usual: on
    construction it gets :class:`SoftLabelLossMixin`'s ``loss_by_feat``
    (:func:`enable_soft_labels`; same parameters, same loss on hard labels),
    so its ``loss_decode`` may list ``KDLoss`` and ``SoftDiceLoss`` beside
    mmseg's losses. ``SAROSSHead`` has the mixin already.

    Before the usual :meth:`EncoderDecoder.loss`, this segmentor

    1. checks every ``gt_soft_logits`` (float, 3-D, ``K == num_classes``,
       not larger than the batch input) and names the offending sample;
    2. gives each sample without ``gt_sem_seg`` an all-``ignore_index`` map
       of the padded batch size, so the decode head, stock auxiliary heads and
       mmseg's accuracy all run unchanged (they see no hard pixel there);
    3. refuses a batch with soft labels when no loss of the decode head uses
       them (or the head has its own ``loss_by_feat``), instead of silently
       training on hard labels only.

    Auxiliary heads stay stock mmseg heads and train on hard labels only.
    Inference (``predict``, whole or slide) is :class:`EncoderDecoder`'s.

    Args: see :class:`mmseg.models.segmentors.EncoderDecoder`.
    """

    def _init_decode_head(self, decode_head) -> None:
        super()._init_decode_head(decode_head)
        enable_soft_labels(self.decode_head)

    def _prepare_samples(self, inputs: Tensor,
                         data_samples: SampleList) -> SampleList:
        """Validate soft labels and add all-ignore ``gt_sem_seg`` maps.

        Args:
            inputs (Tensor): Batch images (N, C, H, W), already padded.
            data_samples (list[SegDataSample]): The batch (modified in place).

        Returns:
            list[SegDataSample]: ``data_samples``.
        """
        h_in, w_in = inputs.shape[-2:]
        num_classes = self.decode_head.num_classes
        ignore_index = self.decode_head.ignore_index
        has_soft = False
        for n, sample in enumerate(data_samples):
            if 'gt_soft_logits' in sample:
                has_soft = True
                check_soft_logits(sample, n, num_classes, (h_in, w_in), 'SoftLabelEncoderDecoder')
                if 'gt_sem_seg' not in sample:
                    sample.gt_sem_seg = PixelData(data=torch.full(
                        (1, h_in, w_in), ignore_index, dtype=torch.long,
                        device=sample.gt_soft_logits.data.device))
            elif 'gt_sem_seg' not in sample:
                raise ValueError(
                    f'SoftLabelEncoderDecoder: {sample_name(sample, n)} has neither gt_sem_seg '
                    'nor gt_soft_logits; every training sample needs a label')
        if has_soft and not uses_soft_labels(self.decode_head):
            names = [type(fn).__name__ for fn in loss_modules(self.decode_head)]
            raise ValueError(
                'SoftLabelEncoderDecoder: the batch has soft labels '
                '(gt_soft_logits) but the decode head '
                f'{type(self.decode_head).__name__} does not support them: '
                + (f'none of its losses {names} takes soft labels; add KDLoss and/or SoftDiceLoss '
                   'to decode_head.loss_decode' if getattr(self.decode_head, 'supports_soft_labels', False)
                   else 'it has its own loss_by_feat') + ', or drop the soft labels')
        return data_samples

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Compute the training losses.

        Args:
            inputs (Tensor): Images (N, C, H, W).
            data_samples (list[SegDataSample]): Samples with ``gt_sem_seg``
                and/or ``gt_soft_logits``.

        Returns:
            dict[str, Tensor]: Loss components (``decode.loss_ce``,
            ``decode.loss_kd``, ``decode.loss_dice``, ``decode.acc_seg``,
            plus those of auxiliary heads).
        """
        data_samples = self._prepare_samples(inputs, data_samples)
        return super().loss(inputs, data_samples)
