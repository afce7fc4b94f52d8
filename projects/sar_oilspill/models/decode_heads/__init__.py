from .aspp_v2_head import ASPPV2Head
from .cbdnet_head import CBDNetHead
from .linknet_head import LinkNetHead
from .saross_head import SAROSSHead
from .soft_label_loss import (SegTargets, SoftLabelLossMixin, enable_soft_labels, soft_label_class,
                              uses_soft_labels)

__all__ = ['ASPPV2Head', 'CBDNetHead', 'LinkNetHead', 'SAROSSHead', 'SegTargets',
           'SoftLabelLossMixin', 'enable_soft_labels', 'soft_label_class', 'uses_soft_labels']
