# SAROSS-Net on OSD (5 classes): random 512 crops for training, the full 1250x650 image for testing.
# Real data only; DAKD (real + SAR-JointNet tiles with soft labels) is configs/dakd/saross_osd.py.
_base_ = [
    '../_base_/models/saross_mambavision_b.py', '../_base_/datasets/osd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_200e.py'
]
# encoder windows = the level maps of the 512x512 training crops (32x32, 16x16): whole-map windows in training; the
# 1250x650 test image (padded to 1280x672: maps 42x80, 21x40) is split into windows of the training size, the
# padding of its edge windows masked out
model = dict(backbone=dict(window_size=(8, 8, 32, 16)), decode_head=dict(num_classes=5))
