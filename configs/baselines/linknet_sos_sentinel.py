_base_ = [
    '../_base_/models/linknet_r18.py', '../_base_/datasets/sos_sentinel.py',
    '../_base_/default_runtime.py', '../_base_/schedules/sgd_20k.py'
]
model = dict(decode_head=dict(num_classes=2))
