from .kd_loss import KDLoss
from .soft_dice_loss import SoftDiceLoss

__all__ = ['KDLoss', 'SoftDiceLoss']
