# Stock mmseg DeepLabV3+ R50-D8 with BN. No ImageNet weights are downloaded: set model.pretrained to a local
# ResNet-50-v1c checkpoint (e.g. --cfg-options model.pretrained=checkpoints/resnet50_v1c.pth) to start from one.
_base_ = 'mmseg::_base_/models/deeplabv3plus_r50-d8.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg, num_classes=2),
    auxiliary_head=dict(norm_cfg=norm_cfg, num_classes=2))
