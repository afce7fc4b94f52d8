# Table 9: every CAFT block of the skip grid replaced by one 3x3 conv-BN-ReLU block (LR node -> HR width, added to
# the HR features like the CAFT block's output): +8.18 M parameters at MambaVision-B's widths (paper: +6.95 M).
_base_ = '../osd.py'
model = dict(decode_head=dict(skip_cfg=dict(skip_type='conv3x3')))
