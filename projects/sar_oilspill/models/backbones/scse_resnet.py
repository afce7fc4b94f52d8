"""CBD-Net's encoder: a ResNet with an scSE recalibration after every stage.

A backbone (registered in mmseg's ``MODELS`` like any other); it sits next to
:class:`CBDNetHead` because the two together are the CBD-Net baseline.
"""
import torch.nn as nn
from torch import Tensor

from mmseg.models.backbones import ResNet
from mmseg.registry import MODELS


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation, as in CBD-Net's code.

    Roy et al. ("Concurrent Spatial and Channel Squeeze & Excitation in Fully
    Convolutional Networks", MICCAI 2018), in the variant of the CBD-Net
    release (``networks/CBDNet.py`` of CUG-URS/Marine-Oil-Spill-Detection-
    Network-CBDNet)::

        cSE(U) = U * sigmoid(W_2 W_1 avgpool(U))    # W_1: C -> C/2, W_2: C/2 -> C
        sSE(U) = U * sigmoid(w^T U)                 # 1x1 conv C -> 1
        scSE(U) = cSE(U) + sSE(U)

    1x1 convs without bias; unlike Roy et al., no ReLU between ``W_1`` and
    ``W_2`` (kept as released).

    Args:
        channels (int): Channels ``C`` of ``U``.
        reduction (int): ``C / |W_1 U|``. Defaults to 2 (CBD-Net).
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        if channels < reduction:
            raise ValueError(f'SCSE: channels={channels} < reduction={reduction}')
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, 1, bias=False),
            nn.Conv2d(channels // reduction, channels, 1, bias=False),
            nn.Sigmoid())
        self.spatial_gate = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x * self.channel_gate(x) + x * self.spatial_gate(x)


@MODELS.register_module()
class SCSEResNet(ResNet):
    """mmseg's :class:`ResNet` with :class:`SCSE` after every stage (CBD-Net's encoder).

    As in the CBD-Net release (Zhu et al., "Oil Spill Contextual and
    Boundary-Supervised Detection Network Based on Marine SAR Images", IEEE
    TGRS 2022; ResNet-34 encoder, ImageNet-initialised): the recalibrated
    output of stage ``i`` is both the stage's output and the input of stage
    ``i + 1``. Without ``scse``, this is mmseg's ResNet; parameter names are
    those of mmseg's ResNet (= torchvision's) plus ``scse.{i}.*``, so a
    torchvision ResNet checkpoint loads with only the scSE weights missing.

    Args:
        scse_reduction (int): ``reduction`` of every :class:`SCSE`. Defaults
            to 2.
        **kwargs: :class:`ResNet` arguments (``depth``, ``out_indices``,
            ``norm_cfg``, ``style``, ``init_cfg``, ...).
    """

    def __init__(self, scse_reduction: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scse = nn.ModuleList(
            SCSE(self.base_channels * 2**i * self.block.expansion, scse_reduction)
            for i in range(len(self.res_layers)))

    def forward(self, x: Tensor) -> tuple:
        """(B, 3, H, W) -> tuple of the ``out_indices`` stage outputs, recalibrated."""
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = self.scse[i](getattr(self, layer_name)(x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
