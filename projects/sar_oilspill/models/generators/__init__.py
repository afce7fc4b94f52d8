"""SAR-JointNet: joint diffusion of SAR images and segmentation logits (paper Sec. 3.2)."""
from .balancing_factor import (BalancingFactorAccumulator, compute_balancing_factor,
                               image_to_signed_unit, label_to_signed_onehot, mean_fft_power)
from .concat_ddpm import ConcatDDPM
from .joint_unet import DiffusionUNet, JointExchange, JointUNet
from .sampling import (JointSample, build_sampling_scheduler, build_train_scheduler,
                       joint_ddim_sample, label_x0_to_logits, logits_to_label_x0, make_generators)
from .sar_jointnet import DEFAULT_UNET_CFG, TINY_UNET_CFG, SARJointNet

__all__ = [
    'SARJointNet', 'ConcatDDPM', 'JointUNet', 'DiffusionUNet', 'JointExchange', 'TINY_UNET_CFG',
    'DEFAULT_UNET_CFG', 'BalancingFactorAccumulator', 'compute_balancing_factor',
    'mean_fft_power', 'image_to_signed_unit', 'label_to_signed_onehot', 'JointSample',
    'build_train_scheduler', 'build_sampling_scheduler', 'joint_ddim_sample',
    'logits_to_label_x0', 'label_x0_to_logits', 'make_generators'
]
