# SAROSS-Net (paper Sec. 3.3): MambaVision-B encoder, UNet++ skip grid of CAFT blocks, conv decoder.
# Loss (Eq. 10): CE on hard labels + KD on soft labels (D_aug) + generalised Dice, from ./dakd_losses.py (the paper's
# lambda and T values were lost from its text: lambda_kd = 1, lambda_dice = 1, T = 2 are this project's choice).
# The encoder starts from NVlabs' ImageNet-1K MambaVision-B (as in the paper), declared by its release URL: mmengine
# reads it from $SAR_OILSPILL_WEIGHTS_DIR when set (offline weights folder), else from torch's hub cache, downloading
# it once; a local file: --cfg-options model.backbone.init_cfg.checkpoint=PATH; from scratch: ...init_cfg=None.
_base_ = './dakd_losses.py'
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SoftLabelSegDataPreProcessor',  # mmseg's SegDataPreProcessor that also pads the soft labels
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32,
    test_cfg=dict(size_divisor=32))
model = dict(
    type='SoftLabelEncoderDecoder',
    data_preprocessor=data_preprocessor,
    # windows: the level maps of a 512x512 crop (32x32, 16x16; NVlabs' ADE20K-512 configs use (8, 8, 64, 32), a
    # window at least the whole map). Smaller maps get one whole-map window, larger ones windows of this size with
    # the padding of edge windows masked out (window_padding='mask'); the dataset configs set their own.
    backbone=dict(type='MambaVision', arch='base', out_indices=(0, 1, 2, 3), drop_path_rate=0.3, norm_cfg=norm_cfg,
                  window_size=(8, 8, 32, 16), window_padding='mask',
                  init_cfg=dict(type='Pretrained',
                                checkpoint='https://huggingface.co/nvidia/MambaVision-B-1K/resolve/main/'
                                'mambavision_base_1k.pth.tar')),
    decode_head=dict(
        type='SAROSSHead',
        in_channels=[128, 256, 512, 1024],
        decoder_channels=(256, 128, 64, 32, 16),
        # attention in C/4 channels: +0.78 M parameters over no skip module (full width: +2.47 M; paper: +0.89 M)
        skip_cfg=dict(type='UNetPPSkip', skip_type='caft', num_heads=(1, 2, 4), attn_reduction=4),
        num_classes=2,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode={{_base_.dakd_loss_decode}}),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
