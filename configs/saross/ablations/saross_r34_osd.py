# Table 7: ResNet-34 encoder with CAFT skips.
_base_ = [
    '../../_base_/models/saross_resnet34.py', '../../_base_/datasets/osd.py', '../../_base_/default_runtime.py',
    '../../_base_/schedules/adamw_200e.py'
]
model = dict(decode_head=dict(num_classes=5))
