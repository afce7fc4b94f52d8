"""Encoder-decoder that trains on hard labels, soft labels, or a mix."""
import torch
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList


@MODELS.register_module()
class SoftLabelEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` whose training batches may carry soft labels.

    Every data sample has either or both of:

    * ``gt_sem_seg``: PixelData, LongTensor (1, H, W), 255 = ignore (real
      data; for synthetic soft-label samples all 255, or the teacher's argmax
      in the hard-label ablation);
    * ``gt_soft_logits``: PixelData, FloatTensor (K, H, W), the teacher's
      per-pixel logits (synthetic D_aug samples).

    Before the usual :meth:`EncoderDecoder.loss`, this segmentor

    1. checks every ``gt_soft_logits`` (float, 3-D, ``K == num_classes``,
       not larger than the batch input) and names the offending sample;
    2. gives each sample without ``gt_sem_seg`` an all-``ignore_index`` map
       of the padded batch size, so the decode head, stock auxiliary heads and
       mmseg's accuracy all run unchanged (they see no hard pixel there);
    3. refuses a batch with soft labels when the decode head cannot use them
       (no ``supports_soft_labels`` attribute), instead of silently training
       on hard labels only.

    The losses themselves (Eq. 10) are computed by the decode head (see
    ``SAROSSHead.loss_by_feat``); auxiliary heads train on hard labels only.
    Inference (``predict``, whole or slide) is :class:`EncoderDecoder`'s.

    Args: see :class:`mmseg.models.segmentors.EncoderDecoder`.
    """

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
            where = sample.metainfo.get('img_path', f'batch sample {n}')
            if 'gt_soft_logits' in sample:
                has_soft = True
                t = sample.gt_soft_logits.data
                if not isinstance(t, Tensor) or t.dim() != 3 or \
                        not t.is_floating_point() or t.shape[0] != num_classes:
                    shape = tuple(t.shape) if isinstance(t, Tensor) else t
                    raise ValueError(
                        f'SoftLabelEncoderDecoder: gt_soft_logits of {where} '
                        f'must be a float tensor ({num_classes}, H, W) of '
                        f'teacher logits; got {shape}')
                if t.shape[-2] > h_in or t.shape[-1] > w_in:
                    raise ValueError(
                        f'SoftLabelEncoderDecoder: gt_soft_logits of {where} '
                        f'is {tuple(t.shape[-2:])}, larger than the batch '
                        f'input {h_in}x{w_in}')
                if 'gt_sem_seg' not in sample:
                    sample.gt_sem_seg = PixelData(data=torch.full(
                        (1, h_in, w_in), ignore_index, dtype=torch.long,
                        device=t.device))
            elif 'gt_sem_seg' not in sample:
                raise ValueError(
                    f'SoftLabelEncoderDecoder: {where} has neither gt_sem_seg '
                    'nor gt_soft_logits; every training sample needs a label')
        if has_soft and not getattr(self.decode_head, 'supports_soft_labels',
                                    False):
            raise ValueError(
                'SoftLabelEncoderDecoder: the batch has soft labels '
                '(gt_soft_logits) but the decode head '
                f'{type(self.decode_head).__name__} does not support them; '
                'use SAROSSHead or drop the soft labels')
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
