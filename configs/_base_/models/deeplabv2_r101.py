# DeepLab v2 (Chen et al., TPAMI 2017): dilated ResNet-101 (output stride 8; mmseg's ResNetV1c-D8 as in its DeepLab
# v3 configs) + the v2 ASPP, four 3x3 convs of dilation 6/12/18/24 to the logits, summed (ASPPV2Head). No auxiliary
# head, no multi-scale fusion, no CRF. No ImageNet weights are downloaded: set model.pretrained to a local
# ResNet-101-v1c checkpoint (e.g. --cfg-options model.pretrained=checkpoints/resnet101_v1c.pth) to start from one.
_base_ = 'mmseg::_base_/models/deeplabv3_r50-d8.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    backbone=dict(depth=101, norm_cfg=norm_cfg),
    decode_head=dict(_delete_=True, type='ASPPV2Head', in_channels=2048, in_index=3, dilations=(6, 12, 18, 24),
                     num_classes=2, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)
