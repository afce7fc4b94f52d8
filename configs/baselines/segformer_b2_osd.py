_base_ = [
    '../_base_/models/segformer_b2.py', '../_base_/datasets/osd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/adamw_segformer_20k.py'
]
model = dict(decode_head=dict(num_classes=5))
