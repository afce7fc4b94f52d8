# SAROSS-Net with a ResNet-34 encoder (paper Table 7), from torchvision's ImageNet-1K weights (mmseg's ResNet has
# torchvision's parameter names; read by mmengine without torchvision, the classifier `fc.*` ignored). Same rules as
# the MambaVision weights: $SAR_OILSPILL_WEIGHTS_DIR, the hub cache, or
# --cfg-options model.backbone.init_cfg.checkpoint=PATH; from scratch: model.backbone.init_cfg=None
_base_ = './saross_mambavision_b.py'
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=34, num_stages=4, out_indices=(0, 1, 2, 3), style='pytorch',
                  norm_cfg=dict(type='BN', requires_grad=True),
                  init_cfg=dict(type='Pretrained',
                                checkpoint='https://download.pytorch.org/models/resnet34-b627a593.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]))
