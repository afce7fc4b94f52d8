# DeepLabV3+ with a ResNet-18-D8 backbone (mmseg's r18 channel settings): the CPU-sized variant.
_base_ = './deeplabv3plus_r50.py'
model = dict(
    backbone=dict(depth=18),
    decode_head=dict(c1_in_channels=64, c1_channels=12, in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
