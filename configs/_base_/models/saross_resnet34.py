# SAROSS-Net with a ResNet-34 encoder (paper Table 7). No download: for ImageNet weights pass a local file with
# --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
_base_ = './saross_mambavision_b.py'
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=34, num_stages=4, out_indices=(0, 1, 2, 3), style='pytorch',
                  norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=[64, 128, 256, 512]))
