"""Channel LayerNorm for (B, C, H, W) maps, shared by the MambaVision backbone and CAFT."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of every pixel of a (B, C, H, W) map.

    Mean and biased variance over ``C``, ``eps`` added to the variance, then a per-channel
    affine transform: NVlabs MambaVision's ``ln2d`` output norm and Restormer's
    ``WithBias_LayerNorm`` (CAFT) are the same operation. Parameters ``weight`` and ``bias``
    of shape (C,), as :class:`torch.nn.LayerNorm` (state-dict keys unchanged).

    Mixed precision: the statistics and the affine transform are computed in float32 and the
    result is cast back to the input's dtype. Features reach this norm un-normalised (the
    encoder's outputs enter CAFT directly), and squaring ``x - mean`` in float16 overflows
    once ``|x - mean| > 256``, which would collapse the output to the bias under AMP.

    Args:
        num_channels (int): Number of channels ``C``.
        eps (float): Added to the variance. Defaults to 1e-5.
        **kwargs: Other arguments of :class:`torch.nn.LayerNorm` (``elementwise_affine``,
            ``bias``).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, **kwargs) -> None:
        super().__init__(num_channels, eps=eps, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): (B, C, H, W). Returns: Tensor: (B, C, H, W), ``x``'s dtype."""
        if x.dim() != 4:
            raise ValueError(f'LayerNorm2d: expected (B, C, H, W), got {tuple(x.shape)}')
        dtype = x.dtype
        weight, bias = self.weight, self.bias
        if dtype in _LOW_PRECISION or (weight is not None and weight.dtype in _LOW_PRECISION):
            x = x.float()
            weight = None if weight is None else weight.float()
            bias = None if bias is None else bias.float()
        # aten::layer_norm over the channels-last view (no copy made here): on CPU as fast as
        # or faster than mean/var over dim 1 (aten::var over dim 1 is about 5x slower)
        out = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, weight, bias,
                           self.eps)
        return out.permute(0, 3, 1, 2).to(dtype)
