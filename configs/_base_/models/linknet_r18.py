# LinkNet (Chaurasia & Culurciello 2017): ResNet-18 encoder (mmseg's ResNet = torchvision's layout) + the LinkNet
# decoder (projects/sar_oilspill/models/decode_heads/linknet_head.py); mmseg's EncoderDecoder and ImageNet input
# normalisation (from its UPerNet base, whose heads are replaced). No ImageNet weights are downloaded: to start from
# a local torchvision ResNet-18 file pass
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmseg::_base_/models/upernet_r50.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        style='pytorch',
        norm_cfg=norm_cfg,
        norm_eval=False),
    decode_head=dict(
        _delete_=True,
        type='LinkNetHead',
        in_channels=[64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        channels=32,
        final_kernel=3,
        final_norm=True,
        dropout_ratio=0.0,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None,
    test_cfg=dict(mode='whole'))
