# SAROSS-Net on OSD (5 classes): random 512 crops for training, the full 1250x650 image for testing.
# Real data only; DAKD (real + SAR-JointNet tiles with soft labels) is configs/dakd/saross_osd.py.
_base_ = [
    '../_base_/models/saross_mambavision_b.py', '../_base_/datasets/osd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_200e.py'
]
model = dict(decode_head=dict(num_classes=5))
