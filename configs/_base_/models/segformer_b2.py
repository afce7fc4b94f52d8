# SegFormer MiT-B2 (mmseg's B2 settings).
_base_ = './segformer_b0.py'
model = dict(
    backbone=dict(embed_dims=64, num_heads=[1, 2, 5, 8], num_layers=[3, 4, 6, 3]),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
