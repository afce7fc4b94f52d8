"""SAR-JointNet: joint pixel-space diffusion of SAR images and segmentation logits.

Paper Sec. 3.2 (Eq. 1-7), Sec. 4.2 and supplementary Sec. 8 (Alg. 1, 2, Eq. 21).
"""
from __future__ import annotations

import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from .joint_unet import JointUNet
from .sampling import (JointSample, build_sampling_scheduler, build_train_scheduler,
                       joint_ddim_sample, label_x0_to_logits, make_generators, per_sample_randn)

#: Tiny architecture for unit tests / smoke runs (32x32, ~0.18 M parameters per branch).
TINY_UNET_CFG = dict(
    block_out_channels=(16, 32),
    layers_per_block=1,
    attention_resolutions=(16, ),
    sample_size=32,
    norm_num_groups=8,
    attention_head_dim=8)

#: Default architecture for 256x256 SAR tiles (DDPM-256 layout, ~114 M parameters per branch).
DEFAULT_UNET_CFG = dict(
    block_out_channels=(128, 128, 256, 256, 512, 512),
    layers_per_block=2,
    attention_resolutions=(16, ),
    sample_size=256,
    norm_num_groups=32,
    attention_head_dim=64)

_STAGES = (1, 2, 3)
_LABEL_LOSSES = ('ce', 'l2')


@MODELS.register_module()
class SARJointNet(BaseModel):
    """SAR-JointNet (SAR-Net + Label-Net with zero-conv exchange), trained in 3 stages.

    Training (``forward(..., mode='loss')``), Alg. 1:

    * images ``x0`` in [-1, 1] (``(B, C_img, H, W)``; 3-channel inputs are averaged
      to 1 channel when ``image_channels == 1``); masks from ``gt_sem_seg`` one-hot
      encoded into {-1, 1} and scaled by ``b`` (Eq. 1); pixels equal to
      ``ignore_index`` get -b in every channel and are excluded from the CE loss;
    * one timestep ``t ~ U{0, T-1}`` per sample, shared by both modalities, with
      independent Gaussian noise for each (Eq. 2), via diffusers' ``DDPMScheduler``
      (squared-cosine betas, ``T = 1000``);
    * stage 1: SAR-Net alone, ``loss_image = ||x0_hat - x0||^2`` (mean, Eq. 5);
      stage 2/3: joint model, ``loss_image`` as above plus ``loss_label =
      CE(logits, mask)`` (Eq. 6); their sum is Eq. 7 (weights configurable).
      With ``label_loss='l2'`` (the "w/o CE loss" ablation, Table 5, and JointNet,
      Table 1) the label branch is trained like the image branch instead:
      ``loss_label_l2 = ||x0_hat_label - b (2 onehot - 1)||^2`` (mean over the
      non-ignored pixels); it then predicts the scaled mask, not logits.

    Trainable parameters per stage (:meth:`set_stage`):

    * 1: SAR-Net (Label-Net and exchange frozen; they are not used);
    * 2: Label-Net and all exchange layers (those feeding SAR-Net and those feeding
      Label-Net); SAR-Net itself frozen;
    * 3: everything (the training loop lowers the learning rate).

    The stage and ``b`` are buffers (``training_stage``, ``balancing_factor``) and
    thus part of the state dict: loading a checkpoint restores the stage and the
    matching ``requires_grad`` flags.

    Stage switch 1 -> 2 (done by the training loop): ``init_label_net_from_sar_net()``
    then ``set_stage(2)``. All updates are in place, so an optimizer built on
    ``model.parameters()`` stays valid; frozen parameters get no gradient and are
    skipped by PyTorch optimizers. Note for DDP: a wrapper only syncs parameters that
    required grad when it was built; re-wrap the model after a stage change (or build
    it with ``find_unused_parameters=True`` while all parameters require grad).

    Args:
        balancing_factor (float): ``b`` of Eq. 4/20 for the training set (see
            :mod:`.balancing_factor`); paper: 0.528 OSD, 0.447 SOS-ALOS, 0.466 SOS-S1.
        num_classes (int): Number of classes ``K`` (Label-Net in/out channels).
        image_channels (int): SAR channels (1 = grayscale).
        unet (dict, optional): :class:`~.joint_unet.DiffusionUNet` arguments shared
            by both branches. Defaults to :data:`DEFAULT_UNET_CFG`.
        stage (int): Initial training stage (1, 2 or 3).
        num_train_timesteps (int): ``T`` of the DDPM schedule.
        beta_schedule (str): diffusers beta schedule (paper: squared cosine).
        loss_image_weight (float): Weight of the image L2 loss.
        loss_label_weight (float): Weight of the label loss.
        label_loss (str): ``'ce'`` (paper, Eq. 6: Label-Net outputs logits, CE against
            the mask) or ``'l2'`` (ablation without CE: Label-Net outputs the x0 of the
            scaled mask, L2 loss; sampling uses that x0 clipped to [-b, b] instead of
            Eq. 21, and :meth:`sample` returns ``label_x0_to_logits`` of it as logits).
        ignore_index (int): Label value that is ignored (mmseg convention 255).
        test_cfg (dict, optional): Sampling options used by ``mode='predict'``:
            ``num_inference_steps`` (200), ``eta`` (0.0), ``timestep_spacing``
            (``'trailing'``).
        data_preprocessor (dict | nn.Module, optional): Defaults to mmseg's
            ``SegDataPreProcessor(mean=[127.5], std=[127.5], size_divisor=1)``, which
            maps uint8 images to [-1, 1] and stacks the batch.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 balancing_factor: float,
                 num_classes: int = 2,
                 image_channels: int = 1,
                 unet: Optional[dict] = None,
                 stage: int = 1,
                 num_train_timesteps: int = 1000,
                 beta_schedule: str = 'squaredcos_cap_v2',
                 loss_image_weight: float = 1.0,
                 loss_label_weight: float = 1.0,
                 label_loss: str = 'ce',
                 ignore_index: int = 255,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SegDataPreProcessor', mean=[127.5], std=[127.5],
                                     size_divisor=1)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not balancing_factor > 0:
            raise ValueError(f'balancing_factor must be > 0, got {balancing_factor}')
        if num_classes < 2:
            raise ValueError(f'num_classes must be >= 2, got {num_classes}')
        self.num_classes = int(num_classes)
        self.image_channels = int(image_channels)
        self.ignore_index = int(ignore_index)
        self.loss_image_weight = float(loss_image_weight)
        self.loss_label_weight = float(loss_label_weight)
        if label_loss not in _LABEL_LOSSES:
            raise ValueError(f'label_loss must be one of {_LABEL_LOSSES}, got {label_loss!r}')
        self.label_loss = label_loss
        self.num_train_timesteps = int(num_train_timesteps)
        self.unet_cfg = dict(DEFAULT_UNET_CFG if unet is None else unet)
        self.test_cfg = dict(num_inference_steps=200, eta=0.0, timestep_spacing='trailing')
        unknown = set(test_cfg or {}) - set(self.test_cfg)
        if unknown:
            raise ValueError(f'unknown test_cfg keys {sorted(unknown)}; allowed {sorted(self.test_cfg)}')
        self.test_cfg.update(test_cfg or {})

        self.joint = self._build_network()
        self.train_scheduler = build_train_scheduler(num_train_timesteps, beta_schedule)
        self.sample_scheduler = build_sampling_scheduler(
            num_train_timesteps, beta_schedule, self.test_cfg['timestep_spacing'])

        self.register_buffer('balancing_factor_buf', torch.tensor(float(balancing_factor),
                                                                  dtype=torch.float64))
        self.register_buffer('training_stage', torch.tensor(int(stage), dtype=torch.long))
        self.register_buffer('label_net_initialized', torch.tensor(False))
        self.set_stage(stage, _warn=False)

    def _build_network(self) -> nn.Module:
        """The denoiser, stored as ``self.joint``: SAR-Net + Label-Net with exchange layers."""
        return JointUNet(self.image_channels, self.num_classes, self.unet_cfg)

    # ------------------------------------------------------------------ state
    @property
    def sar_net(self) -> nn.Module:
        """SAR-Net (:class:`~.joint_unet.DiffusionUNet`)."""
        return self.joint.sar_net

    @property
    def label_net(self) -> nn.Module:
        """Label-Net (:class:`~.joint_unet.DiffusionUNet`)."""
        return self.joint.label_net

    @property
    def stage(self) -> int:
        """Current training stage (1, 2 or 3)."""
        return int(self.training_stage.item())

    @property
    def balancing_factor(self) -> float:
        """``b`` (Eq. 4/20)."""
        return float(self.balancing_factor_buf.item())

    def _stage_trainable_modules(self, stage: int) -> List[nn.Module]:
        if stage == 1:
            return [self.joint.sar_net]
        if stage == 2:
            return [self.joint.label_net, self.joint.exchange_to_sar, self.joint.exchange_to_label]
        return [self.joint]

    def set_stage(self, stage: int, _warn: bool = True) -> None:
        """Switch the training stage and set ``requires_grad`` accordingly.

        Frozen parameters also have their ``.grad`` cleared. The data preprocessor
        has no parameters and is untouched.

        Args:
            stage (int): 1, 2 or 3 (see the class docstring).
        """
        if stage not in _STAGES:
            raise ValueError(f'stage must be one of {_STAGES}, got {stage!r}')
        if _warn and stage >= 2 and not bool(self.label_net_initialized):
            warnings.warn('SARJointNet.set_stage(%d): Label-Net was not initialised from SAR-Net '
                          '(call init_label_net_from_sar_net() first, as in the paper) - it keeps '
                          'its own weights' % stage)
        self.training_stage.fill_(int(stage))
        for p in self.joint.parameters():
            p.requires_grad_(False)
        for module in self._stage_trainable_modules(stage):
            for p in module.parameters():
                p.requires_grad_(True)
        for p in self.joint.parameters():
            if not p.requires_grad:
                p.grad = None

    def init_label_net_from_sar_net(self, reset_exchange: bool = True) -> None:
        """Initialise Label-Net from SAR-Net (start of stage 2, Sec. 3.2.2).

        Copies every SAR-Net tensor except the input/output convs, which are
        re-initialised for K channels; by default also re-zeroes the exchange layers,
        so that the joint image output equals SAR-Net's exactly. In place (optimizer
        safe). Does not change the stage; call :meth:`set_stage` afterwards.

        Args:
            reset_exchange (bool): Re-zero the exchange layers too.
        """
        self.joint.init_label_net_from_sar_net(reset_exchange=reset_exchange)
        self.label_net_initialized.fill_(True)

    def named_trainable_parameters(self) -> Iterator[Tuple[str, nn.Parameter]]:
        """``(name, parameter)`` pairs that are trained in the current stage."""
        return ((n, p) for n, p in self.named_parameters() if p.requires_grad)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters that are trained in the current stage."""
        return (p for _, p in self.named_trainable_parameters())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        key = prefix + 'training_stage'
        if key in state_dict:  # restore requires_grad for the checkpoint's stage
            stage = int(state_dict[key])
            if stage not in _STAGES:
                error_msgs.append(f'{key}: stage must be one of {_STAGES}, got {stage}')
            else:
                self.set_stage(stage, _warn=False)

    # ------------------------------------------------------------------ data
    def _prepare_images(self, inputs: torch.Tensor) -> torch.Tensor:
        """Check range/shape of preprocessed images; average RGB to gray if needed."""
        if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4:
            raise ValueError('SARJointNet expects preprocessed inputs of shape (B, C, H, W), got '
                             f'{type(inputs).__name__} {tuple(getattr(inputs, "shape", ()))}')
        c = inputs.shape[1]
        if c != self.image_channels:
            if self.image_channels == 1:
                inputs = inputs.mean(dim=1, keepdim=True)  # grayscale SAR saved as RGB
            else:
                raise ValueError(f'inputs have {c} channels, model expects image_channels='
                                 f'{self.image_channels}')
        lo, hi = float(inputs.min()), float(inputs.max())
        if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
            raise ValueError(f'images must be scaled to [-1, 1], got values in [{lo:.3f}, {hi:.3f}]; '
                             "use data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5], "
                             'std=[127.5], size_divisor=1)')
        return inputs.float()

    def _stack_labels(self, data_samples: Optional[Sequence[SegDataSample]], batch: int,
                      hw: Tuple[int, int], device: torch.device) -> torch.Tensor:
        if data_samples is None or len(data_samples) != batch:
            raise ValueError(f'stage {self.stage} needs one data sample with gt_sem_seg per input; '
                             f'got {None if data_samples is None else len(data_samples)} for {batch}')
        labels = []
        for i, ds in enumerate(data_samples):
            if 'gt_sem_seg' not in ds:
                raise ValueError(f'data sample {i} has no gt_sem_seg')
            lab = ds.gt_sem_seg.data
            if lab.ndim == 3:
                lab = lab[0]
            if tuple(lab.shape) != tuple(hw):
                raise ValueError(f'gt_sem_seg {tuple(lab.shape)} of sample {i} does not match '
                                 f'image size {hw}')
            labels.append(lab)
        labels = torch.stack(labels).to(device=device, dtype=torch.long)
        valid = (labels >= 0) & (labels < self.num_classes)
        bad = ~valid & (labels != self.ignore_index)
        if bad.any():
            raise ValueError(f'gt_sem_seg values must lie in [0, {self.num_classes}) or equal '
                             f'ignore_index={self.ignore_index}; found {labels[bad].unique().tolist()}')
        return labels

    def labels_to_scaled_mask(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices ``(B, H, W)`` -> ``b * (2 * onehot - 1)`` ``(B, K, H, W)`` (Eq. 1).

        Ignored pixels (``ignore_index``) are -b in every channel.
        """
        valid = (labels >= 0) & (labels < self.num_classes)
        onehot = F.one_hot(labels.clamp(0, self.num_classes - 1), self.num_classes)
        onehot = onehot.permute(0, 3, 1, 2).float() * valid[:, None].float()
        signed = 2.0 * onehot - 1.0  # normalised one-hot mask in {-1, 1}
        return self.balancing_factor * signed  # Eq. 1

    # ------------------------------------------------------------------ model
    def denoise(self, image_t: torch.Tensor, label_t: Optional[torch.Tensor],
                timesteps: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """One network evaluation.

        Args:
            image_t (Tensor): Noisy images ``(B, C_img, H, W)``.
            label_t (Tensor | None): Noisy scaled masks ``(B, K, H, W)``; None runs
                SAR-Net alone (stage 1).
            timesteps (Tensor): ``(B,)`` integer timesteps.

        Returns:
            tuple: ``(x0_image (B, C_img, H, W), logits (B, K, H, W) | None)``.
        """
        if label_t is None:
            return self.joint.forward_sar(image_t, timesteps), None
        return self.joint(image_t, label_t, timesteps)

    def _noisy_batch(self, inputs: torch.Tensor, data_samples: Optional[Sequence[SegDataSample]]):
        x0_img = self._prepare_images(inputs)
        b, _, h, w = x0_img.shape
        t = torch.randint(0, self.num_train_timesteps, (b, ), device=x0_img.device)
        xt_img = self.train_scheduler.add_noise(x0_img, torch.randn_like(x0_img), t)  # Eq. 2
        labels = xt_lbl = None
        if self.stage >= 2:
            labels = self._stack_labels(data_samples, b, (h, w), x0_img.device)
            x0_lbl = self.labels_to_scaled_mask(labels)  # Eq. 1
            # same t, independent noise (Eq. 2)
            xt_lbl = self.train_scheduler.add_noise(x0_lbl, torch.randn_like(x0_lbl), t)
        return x0_img, labels, xt_img, xt_lbl, t

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[Sequence[SegDataSample]] = None) -> Dict[str, torch.Tensor]:
        """Training losses of the current stage (Alg. 1).

        Args:
            inputs (Tensor): Preprocessed images ``(B, C, H, W)`` in [-1, 1].
            data_samples (list[SegDataSample], optional): With ``gt_sem_seg``
                (needed in stages 2/3).

        Returns:
            dict[str, Tensor]: ``loss_image`` (Eq. 5) and, in stages 2/3,
            ``loss_label`` (Eq. 6) or, with ``label_loss='l2'``, ``loss_label_l2``;
            mmengine sums them (Eq. 7).
        """
        x0_img, labels, xt_img, xt_lbl, t = self._noisy_batch(inputs, data_samples)
        pred_img, logits = self.denoise(xt_img, xt_lbl, t)
        losses = dict(loss_image=self.loss_image_weight * F.mse_loss(pred_img, x0_img))  # Eq. 5
        if logits is None:
            return losses
        valid = labels != self.ignore_index
        if not bool(valid.any()):
            lbl_loss = logits.sum() * 0.0  # every pixel ignored: keep the graph, no signal
        elif self.label_loss == 'ce':
            lbl_loss = F.cross_entropy(logits, labels, ignore_index=self.ignore_index)  # Eq. 6
        else:  # plain diffusion loss on the scaled mask (no CE), over the non-ignored pixels
            sq_err = (logits - self.labels_to_scaled_mask(labels)).pow(2).mean(dim=1)
            lbl_loss = sq_err[valid].mean()
        key = 'loss_label' if self.label_loss == 'ce' else 'loss_label_l2'
        losses[key] = self.loss_label_weight * lbl_loss
        return losses

    @torch.no_grad()
    def sample(self,
               num_samples: Optional[int] = None,
               seeds: Optional[Sequence[int]] = None,
               generator: Optional[Union[torch.Generator, Sequence[torch.Generator]]] = None,
               num_inference_steps: Optional[int] = None,
               eta: Optional[float] = None,
               size: Optional[Union[int, Tuple[int, int]]] = None) -> JointSample:
        """Generate SAR images and label logits with DDIM (Alg. 2, Eq. 21).

        In stage 1 only SAR-Net is sampled (``logits`` is None); in stages 2/3 both
        branches are. The model's train/eval mode is left as is (call ``eval()``
        first if the U-Nets use dropout).

        Args:
            num_samples (int, optional): Number of samples ``N``; inferred from
                ``seeds``/``generator`` list when omitted.
            seeds (Sequence[int], optional): One seed per sample; sample ``i`` draws
                all its noise from ``torch.Generator().manual_seed(seeds[i])`` (CPU), so
                a seed gives the same result whatever else is in the batch.
            generator (torch.Generator | Sequence[torch.Generator], optional): A list
                (one per sample, same semantics as ``seeds``) or a single generator
                shared by the batch. Mutually exclusive with ``seeds``. With neither,
                the global RNG is used.
            num_inference_steps (int, optional): DDIM steps; default ``test_cfg``
                (200).
            eta (float, optional): DDIM eta; default ``test_cfg`` (0.0).
            size (int | tuple[int, int], optional): Output ``(H, W)``; default the
                U-Net ``sample_size``.

        Returns:
            JointSample: ``image`` ``(N, C_img, H, W)`` float in [-1, 1]; ``logits``
            ``(N, K, H, W)`` float, the Label-Net logits of the LAST network
            evaluation (smallest DDIM timestep, e.g. t=4 for 200 trailing steps), or
            None in stage 1. With ``label_loss='l2'``: ``label_x0_to_logits`` of that
            evaluation's x0 estimate.
        """
        if seeds is not None and generator is not None:
            raise ValueError('pass either seeds or generator, not both')
        generators: Optional[List[torch.Generator]] = None
        if seeds is not None:
            generators = make_generators(seeds)
        elif isinstance(generator, (list, tuple)):
            generators = list(generator)
        counts = {len(generators)} if generators is not None else set()
        if num_samples is not None:
            counts.add(int(num_samples))
        if len(counts) != 1:
            raise ValueError('give num_samples, seeds or a generator list (consistent lengths); got '
                             f'num_samples={num_samples}, {len(generators) if generators else 0} '
                             'seeds/generators')
        num = counts.pop()
        h, w = self.sar_net.sample_size if size is None else (
            (size, size) if isinstance(size, int) else tuple(size))
        device = self.balancing_factor_buf.device
        dtype = next(self.joint.parameters()).dtype
        steps = int(self.test_cfg['num_inference_steps'] if num_inference_steps is None
                    else num_inference_steps)
        eta = float(self.test_cfg['eta'] if eta is None else eta)
        joint = self.stage >= 2

        if generator is not None and generators is None and eta > 0:
            raise ValueError('eta > 0 with a single shared generator is not supported; '
                             'pass seeds or one generator per sample')
        img_shape = (self.image_channels, h, w)
        lbl_shape = (self.num_classes, h, w)
        if generators is not None:
            # per sample: image noise then label noise, each from the sample's own generator
            img_rows, lbl_rows = [], []
            for g in generators:
                img_rows.append(per_sample_randn(img_shape, [g], 1, device, dtype))
                if joint:
                    lbl_rows.append(per_sample_randn(lbl_shape, [g], 1, device, dtype))
            image_noise = torch.cat(img_rows)
            label_noise = torch.cat(lbl_rows) if joint else None
        else:
            gen_device = generator.device if generator is not None else device
            image_noise = torch.randn((num, ) + img_shape, generator=generator,
                                      device=gen_device, dtype=dtype).to(device)
            label_noise = torch.randn((num, ) + lbl_shape, generator=generator,
                                      device=gen_device, dtype=dtype).to(device) if joint else None
        b = self.balancing_factor
        if self.label_loss == 'ce':
            return joint_ddim_sample(self.denoise, self.sample_scheduler, image_noise, label_noise, b, steps,
                                     eta, generators)
        result = joint_ddim_sample(self.denoise, self.sample_scheduler, image_noise, label_noise, b, steps, eta,
                                   generators, label_x0_fn=lambda x0: x0.clamp(-b, b))
        logits = None if result.logits is None else label_x0_to_logits(result.logits, b)
        return JointSample(image=result.image, logits=logits)

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None) -> List[SegDataSample]:
        """Generate one sample per input (``mode='predict'``).

        ``inputs`` only sets the batch size and the output size. Seeds are read from
        ``data_samples[i].metainfo['seed']`` when every sample has one (else the
        global RNG is used).

        Returns:
            list[SegDataSample]: per sample ``gen_image`` (PixelData ``(C_img, H, W)``
            in [-1, 1]) and, in stages 2/3, ``seg_logits`` (PixelData ``(K, H, W)``,
            the final-step logits) and ``pred_sem_seg`` (PixelData ``(1, H, W)``
            argmax).
        """
        num, _, h, w = inputs.shape
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(num)]
        seeds = [ds.metainfo.get('seed') for ds in data_samples]
        if any(s is not None for s in seeds) and not all(s is not None for s in seeds):
            raise ValueError(f'either every data sample carries a seed or none does, got {seeds}')
        result = self.sample(num_samples=num, seeds=seeds if seeds[0] is not None else None,
                             size=(h, w))
        for i, ds in enumerate(data_samples):
            ds.gen_image = PixelData(data=result.image[i])
            if result.logits is not None:
                ds.seg_logits = PixelData(data=result.logits[i])
                ds.pred_sem_seg = PixelData(data=result.logits[i].argmax(0, keepdim=True))
        return list(data_samples)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], List[SegDataSample]]:
        """mmengine entry point.

        Args:
            inputs (Tensor): Preprocessed images ``(B, C, H, W)`` in [-1, 1].
            data_samples (list[SegDataSample], optional): Carrying ``gt_sem_seg``.
            mode (str): ``'loss'`` -> dict of losses (:meth:`loss`); ``'predict'`` ->
                list of generated samples (:meth:`predict`); ``'tensor'`` -> dict with
                the raw network outputs on a randomly noised batch: ``image`` (x0
                prediction), ``logits`` (stages 2/3 only) and ``timesteps``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            _, _, xt_img, xt_lbl, t = self._noisy_batch(inputs, data_samples)
            pred_img, logits = self.denoise(xt_img, xt_lbl, t)
            out = dict(image=pred_img, timesteps=t)
            if logits is not None:
                out['logits'] = logits
            return out
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
