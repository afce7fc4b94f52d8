from .saross_head import SAROSSHead
from .soft_label_loss import (SegTargets, SoftLabelLossMixin, enable_soft_labels, soft_label_class,
                              uses_soft_labels)

__all__ = ['SAROSSHead', 'SegTargets', 'SoftLabelLossMixin', 'enable_soft_labels', 'soft_label_class',
           'uses_soft_labels']
