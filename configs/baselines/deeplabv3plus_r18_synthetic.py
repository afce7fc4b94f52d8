_base_ = [
    '../_base_/models/deeplabv3plus_r18.py', '../_base_/datasets/synthetic_osd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/cpu_demo.py'
]
model = dict(decode_head=dict(num_classes=5), auxiliary_head=dict(num_classes=5))
