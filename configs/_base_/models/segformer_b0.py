# Stock mmseg SegFormer (MiT-B0) with BN in the head. For ImageNet weights pass a local file:
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmseg::_base_/models/segformer_mit-b0.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    decode_head=dict(norm_cfg=norm_cfg, num_classes=2))
