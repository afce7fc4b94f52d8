# Table 9 / Table 7 first row: no skip module (encoder features go straight to the decoder).
_base_ = '../osd.py'
model = dict(decode_head=dict(skip_cfg=dict(skip_type='none')))
