# Table 9: every CAFT block of the skip grid replaced by two 3x3 conv-BN-ReLU (plain UNet++ nodes).
_base_ = '../osd.py'
model = dict(decode_head=dict(skip_cfg=dict(skip_type='conv3x3')))
