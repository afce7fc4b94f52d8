# Table 7: ResNet-34 encoder without CAFT (plain skips).
_base_ = './saross_r34_osd.py'
model = dict(decode_head=dict(skip_cfg=dict(skip_type='none')))
