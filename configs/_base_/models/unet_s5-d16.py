# Stock mmseg UNet (s5-d16) + FCN head; BN instead of SyncBN so it runs on one device / CPU.
_base_ = 'mmseg::_base_/models/fcn_unet_s5-d16.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg, num_classes=2),
    auxiliary_head=dict(norm_cfg=norm_cfg, num_classes=2),
    test_cfg=dict(mode='whole'))
