"""MambaVision backbone (Hatamizadeh & Kautz, 2024) in native PyTorch for MMSegmentation.

SAROSS-Net's encoder (paper Sec. 3.3) is an ImageNet-pretrained MambaVision-B. This module
rebuilds the NVlabs network (``mambavision/models/mamba_vision.py``, mambavision 1.2.0) without
timm, einops or mamba-ssm, with parameter names and shapes identical to the NVlabs checkpoints,
so their ``.pth.tar`` files load unchanged. The blocks are in :mod:`.mambavision_blocks`
(this module assembles them, names the variants and loads the weights); their selective scan
comes from :mod:`.selective_scan` (mamba-ssm's CUDA kernel when installed, a chunked PyTorch
scan otherwise).

Layout (``dim`` = C)::

    patch_embed  conv3x3 s2 (in->in_dim) BN ReLU, conv3x3 s2 (in_dim->C) BN ReLU      stride 4
    levels.0     ConvBlocks on C          -> feature 0 (stride 4)  -> downsample -> 2C
    levels.1     ConvBlocks on 2C         -> feature 1 (stride 8)  -> downsample -> 4C
    levels.2     windowed token blocks 4C -> feature 2 (stride 16) -> downsample -> 8C
    levels.3     windowed token blocks 8C -> feature 3 (stride 32)

In a token level of depth ``d`` the first ``ceil(d/2)`` blocks (``d`` odd: ``d//2 + 1``) mix
tokens with :class:`MambaVisionMixer`, the rest with self-attention.

Output size rule: for an input of H x W (any H, W >= 1) feature ``i`` has spatial size
``ceil(H / 2**(i+2)) x ceil(W / 2**(i+2))``. No input padding is needed: every stride-2 conv
is 3x3 with padding 1, which maps ``n`` to ``ceil(n / 2)``, and ``ceil(ceil(n/2^k)/2) =
ceil(n/2^(k+1))``.

Windows of the token levels (``window_padding``):

* ``'mask'`` (default): a window never holds padding tokens in effect. A level map smaller
  than the window in a dimension gets a window of the map's size there (a map within the
  window is one whole-map window, with no padding at all). Where the map is larger than the
  window and not a multiple of it, the map is padded at the bottom/right, and in every edge
  window the valid tokens are moved to the front of the window's sequence (row-major over
  the valid part) and the padding is masked: attention ignores padded keys and the Mamba
  mixer zeroes them before its (non-causal, kernel-3) conv1d, and the scan is causal, so
  every window computes exactly what it would compute holding its valid tokens only.
* ``'zeros'``: NVlabs' code: square windows, zero padding that takes part in the attention
  and the scan (different features near the padded edge).

With ``'mask'`` the windows only matter where a level map is larger than them: choose them
per input size, e.g. the level map of the training crop (``(8, 8, 32, 16)`` for 512 crops,
``(8, 8, 16, 8)`` for 256 tiles). The windows hold no parameters: every choice loads the
same checkpoint.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg.registry import MODELS
from .mambavision_blocks import MambaVisionLayer, PatchEmbed, _build_norm
from .mambavision_checkpoint import CLASSIFIER_PREFIXES, check_encoder_weights, load_pretrained

# NVlabs variants (mambavision 1.2.0, mamba_vision.py). Windows are the ImageNet ones; NVlabs'
# ADE20K configs override them (B at 512x512: window_size=(8, 8, 64, 32)).
ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(dim=80, in_dim=32, depths=(1, 3, 8, 4), num_heads=(2, 4, 8, 16),
                 window_size=(8, 8, 14, 7), layer_scale=None),
    'tiny2': dict(dim=80, in_dim=32, depths=(1, 3, 11, 4), num_heads=(2, 4, 8, 16),
                  window_size=(8, 8, 14, 7), layer_scale=None),
    'small': dict(dim=96, in_dim=64, depths=(3, 3, 7, 5), num_heads=(2, 4, 8, 16),
                  window_size=(8, 8, 14, 7), layer_scale=None),
    'base': dict(dim=128, in_dim=64, depths=(3, 3, 10, 5), num_heads=(2, 4, 8, 16),
                 window_size=(8, 8, 14, 7), layer_scale=1e-5),
    'large': dict(dim=196, in_dim=64, depths=(3, 3, 10, 5), num_heads=(4, 8, 16, 32),
                  window_size=(8, 8, 14, 7), layer_scale=1e-5),
    'large2': dict(dim=196, in_dim=64, depths=(3, 3, 12, 5), num_heads=(4, 8, 16, 32),
                   window_size=(8, 8, 14, 7), layer_scale=1e-5),
    # tiny variant for unit tests: every block type, window padding at small inputs.
    'test': dict(dim=16, in_dim=8, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4),
                 window_size=(4, 4, 4, 2), layer_scale=1e-5),
}


@MODELS.register_module()
class MambaVision(BaseModule):
    """MambaVision backbone, state-dict compatible with the NVlabs checkpoints.

    Parameter names follow NVlabs (``patch_embed.conv_down.*``, ``levels.{i}.blocks.{j}.*``,
    ``levels.{i}.downsample.reduction.0.*``); the classifier's ``norm.*``/``head.*`` are absent
    and ignored when loading. Optional output norms are named ``outnorm{i}`` as in NVlabs'
    mmseg wrapper. Output sizes: see the module docstring (``ceil(H / 2**(i+2))``).

    Args:
        arch (str | dict): 'tiny', 'tiny2', 'small', 'base', 'large', 'large2' (NVlabs T, T2,
            S, B, L, L2) or 'test' (unit tests); or a dict with keys ``dim``, ``in_dim``,
            ``depths``, ``num_heads`` and optionally ``window_size``, ``layer_scale``.
            Defaults to 'base'.
        in_channels (int): input channels. Defaults to 3.
        window_size (int | Sequence[int], optional): window side per level (levels 0-1 are
            convolutional and ignore it); an int applies to all levels. None: the arch's
            ImageNet windows (8, 8, 14, 7). Windows hold no parameters, so any value loads
            the same checkpoint (NVlabs' ADE20K-512 configs use (8, 8, 64, 32)). With
            ``window_padding='mask'`` a window larger than a level map shrinks to the map.
        window_padding (str): 'mask' (default): no padding where a level map fits in its
            window, and padded tokens masked out of attention and scan elsewhere, so each
            window computes what it computes on its valid tokens alone; 'zeros': NVlabs'
            zero padding (padding tokens take part). See the module docstring.
        layer_scale (float | None | str): token-block layer scale init; 'arch' takes the
            arch's value (1e-5 for B/L/L2, None for T/T2/S). It decides whether
            ``gamma_1``/``gamma_2`` exist, so it must match the checkpoint. Defaults to 'arch'.
        layer_scale_conv (float, optional): ConvBlock layer scale (``gamma``); None in every
            NVlabs variant. Defaults to None.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
        qkv_bias (bool): bias in qkv. Defaults to True (NVlabs).
        drop_rate (float): dropout after projections. Defaults to 0.
        attn_drop_rate (float): attention dropout. Defaults to 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks.
            Defaults to 0. (NVlabs: 0.2-0.3 on ImageNet, 0.4 for B on ADE20K).
        out_indices (Sequence[int]): levels whose features are returned. Defaults to
            (0, 1, 2, 3).
        norm_cfg (dict): norm of the convolutional parts (stem, ConvBlocks); the token blocks
            always use LayerNorm as in the checkpoints. The stem defaults to eps=1e-4 (NVlabs).
            Defaults to ``dict(type='BN', requires_grad=True)``.
        out_norm (dict, optional): norm applied to each returned feature, as ``outnorm{i}``
            (not in ImageNet checkpoints, so trained from scratch): ``dict(type='LN2d')``
            (NVlabs' mmseg default), ``dict(type='BN')``, ... None: return raw features.
            Defaults to None.
        frozen_stages (int): -1: train everything; 0: freeze the stem; k >= 1: also freeze
            levels 0..k-1 (and their ``outnorm``). Defaults to -1.
        norm_eval (bool): keep BatchNorm layers in eval mode during training. Defaults to False.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads an NVlabs
            ``.pth.tar`` (weights under ``state_dict``), a converted ``.pth``, or a segmentor
            checkpoint (``backbone.`` prefix stripped; or give ``prefix='backbone.'``).
            Missing or unexpected encoder weights raise, listing the keys. Defaults to None.

    Example:
        >>> model = MambaVision(arch='test')
        >>> [f.shape[-2:] for f in model(torch.rand(1, 3, 95, 27))]
        [torch.Size([24, 7]), torch.Size([12, 4]), torch.Size([6, 2]), torch.Size([3, 1])]
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 in_channels: int = 3,
                 window_size: Optional[Union[int, Sequence[int]]] = None,
                 window_padding: str = 'mask',
                 layer_scale: Union[float, None, str] = 'arch',
                 layer_scale_conv: Optional[float] = None,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 out_norm: Optional[dict] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_name = arch if isinstance(arch, str) else None
        settings = self._resolve_arch(arch)
        self.dim = settings['dim']
        self.in_dim = settings['in_dim']
        self.depths = tuple(settings['depths'])
        self.num_heads = tuple(settings['num_heads'])
        num_levels = len(self.depths)
        if num_levels != 4 or len(self.num_heads) != 4:
            raise ValueError(f'MambaVision: depths and num_heads need 4 levels, got '
                             f'{self.depths} and {self.num_heads}')
        if window_size is None:
            window_size = settings.get('window_size', (8, 8, 14, 7))
        if isinstance(window_size, int):
            window_size = (window_size, ) * num_levels
        self.window_size = tuple(int(w) for w in window_size)
        if len(self.window_size) != num_levels or min(self.window_size) < 1:
            raise ValueError(f'MambaVision: window_size needs 4 positive ints, got {window_size}')
        if window_padding not in ('mask', 'zeros'):
            raise ValueError(f"MambaVision: window_padding must be 'mask' or 'zeros', "
                             f'got {window_padding!r}')
        self.window_padding = window_padding
        if layer_scale == 'arch':
            layer_scale = settings.get('layer_scale')
        elif isinstance(layer_scale, str):
            raise ValueError(f"MambaVision: layer_scale must be 'arch', None or a float, "
                             f'got {layer_scale!r}')
        self.layer_scale = layer_scale
        self.out_indices = tuple(out_indices)
        if not self.out_indices or any(i not in range(num_levels) for i in self.out_indices):
            raise ValueError(f'MambaVision: out_indices must be a non-empty subset of '
                             f'0..{num_levels - 1}, got {out_indices}')
        if frozen_stages > num_levels:
            raise ValueError(f'MambaVision: frozen_stages must be <= {num_levels}, '
                             f'got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.channels = tuple(self.dim * 2**i for i in range(num_levels))

        self.patch_embed = PatchEmbed(in_channels, self.in_dim, self.dim, norm_cfg)
        num_blocks = sum(self.depths)  # linearly increasing rates (linspace, meta-safe)
        dpr = [drop_path_rate * j / max(num_blocks - 1, 1) for j in range(num_blocks)]
        self.levels = nn.ModuleList()
        for i in range(num_levels):
            self.levels.append(
                MambaVisionLayer(
                    dim=self.channels[i],
                    depth=self.depths[i],
                    num_heads=self.num_heads[i],
                    window_size=self.window_size[i],
                    window_padding=window_padding,
                    conv=i < 2,
                    downsample=i < num_levels - 1,
                    norm_cfg=norm_cfg,
                    drop_path=dpr[sum(self.depths[:i]):sum(self.depths[:i + 1])],
                    layer_scale=layer_scale,
                    layer_scale_conv=layer_scale_conv,
                    with_cp=with_cp,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate))
        self.out_norm = out_norm
        if out_norm is not None:
            for i in self.out_indices:
                self.add_module(f'outnorm{i}', _build_norm(out_norm, self.channels[i]))
        self._freeze_stages()

    @staticmethod
    def _resolve_arch(arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise ValueError(f'MambaVision: unknown arch {arch!r}; expected one of '
                                 f'{sorted(ARCH_SETTINGS)} or a dict')
            return dict(ARCH_SETTINGS[arch])
        if isinstance(arch, dict):
            missing = {'dim', 'in_dim', 'depths', 'num_heads'} - set(arch)
            if missing:
                raise ValueError(f'MambaVision: arch dict lacks {sorted(missing)}, got {arch}')
            return dict(arch)
        raise TypeError(f'MambaVision: arch must be a str or dict, got {type(arch)}')

    # ---------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Extract the feature pyramid.

        Args:
            x (Tensor): (B, in_channels, H, W), any H, W >= 1.

        Returns:
            tuple[Tensor]: for each ``i`` in ``out_indices`` a (B, dim * 2**i,
            ceil(H / 2**(i+2)), ceil(W / 2**(i+2))) map, taken before the level's downsample.
        """
        x = self.patch_embed(x)
        outs = []
        last = max(self.out_indices)
        for i, level in enumerate(self.levels):
            feat = level.forward_blocks(x)
            if i in self.out_indices:
                if self.out_norm is not None:
                    feat = getattr(self, f'outnorm{i}')(feat)
                outs.append(feat.contiguous())
            if i == last:
                break
            x = level.downsample(feat)
        return tuple(outs)

    # ------------------------------------------------------------------- train / freezing
    def _freeze_stages(self) -> None:
        frozen: List[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen.append(self.patch_embed)
        for i in range(self.frozen_stages):
            frozen.append(self.levels[i])
            if hasattr(self, f'outnorm{i}'):
                frozen.append(getattr(self, f'outnorm{i}'))
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'MambaVision':
        """Set train mode, keeping frozen stages (and BN layers if ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------------------ init
    @staticmethod
    def _default_init(m: nn.Module) -> None:
        """NVlabs init: trunc-normal(0.02) Linear weights, zero biases, unit norms."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if m.bias is not None and not getattr(m.bias, '_no_reinit', False):
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, _BatchNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Default init, or load ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

        ``checkpoint`` is a local file or a URL; the release URLs (:data:`.pretrained.NVLABS_CHECKPOINTS`) are read from
        ``$SAR_OILSPILL_WEIGHTS_DIR`` when it is set, else from torch's hub cache, downloaded once (see
        :mod:`.pretrained`).

        Raises:
            FileNotFoundError: the local checkpoint file does not exist;
                :class:`~.pretrained.PretrainedWeightsUnavailable` (a FileNotFoundError): a URL's file is
                neither in the offline folder / cache nor downloadable (the message says how to get it).
            KeyError: the checkpoint's encoder keys or shapes do not match this architecture
                (missing and unexpected keys listed).
            CheckpointError (a ValueError): the file is empty, unreadable, holds objects that are
                not plain weights, or tensors with NaN/Inf (nothing is loaded).
        """
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            self.apply(self._default_init)
            if self.init_cfg is not None:
                super().init_weights()
            return
        path = self.init_cfg.get('checkpoint')
        if path is None:
            raise ValueError(f'MambaVision: init_cfg {self.init_cfg} has no `checkpoint`')
        state_dict = load_pretrained(path, self.arch_name, prefix=self.init_cfg.get('prefix'))
        self.load_encoder_state_dict(state_dict, source=str(path))
        self._is_init = True

    def load_encoder_state_dict(self, state_dict: Dict[str, Tensor], source: str = '') -> None:
        """Load encoder weights strictly; only the classifier and ``outnorm`` may differ.

        Before anything is copied, the checkpoint's encoder entries (``patch_embed.*``,
        ``levels.*``) are compared with this model's: any missing entry, unexpected entry (e.g.
        the extra blocks of a deeper variant, or ``gamma_*`` when ``layer_scale`` does not
        match) or shape mismatch raises, listing the keys, so a wrong variant never loads
        partially. The classifier (``norm.*``/``head.*``) is dropped; ``outnorm*`` layers that
        the checkpoint lacks stay newly initialised, extra ``outnorm*`` entries are ignored.

        Args:
            state_dict (dict[str, Tensor]): NVlabs-named weights (``norm.``/``head.`` allowed).
            source (str): file name for messages.

        Raises:
            KeyError: encoder keys missing from or unexpected in ``state_dict``, or encoder
                weights of the wrong shape; the message lists them.
        """
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(CLASSIFIER_PREFIXES)}
        own = self.state_dict()
        check_encoder_weights(state_dict, own, self.arch_name, source)
        loadable = {k: v for k, v in state_dict.items() if k in own}
        ignored = sorted(k for k in state_dict if k not in own)
        new_layers = sorted(k for k in own if k not in state_dict)
        self.load_state_dict(loadable, strict=False)
        print_log(
            f'MambaVision: loaded {len(loadable)} tensors from {source!r}; '
            f'new (not in checkpoint): {new_layers}; ignored: {ignored[:10]}',
            logger='current')
