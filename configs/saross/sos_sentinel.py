# SAROSS-Net on SOS-Sentinel (Sentinel-1A, 256x256 tiles). DAKD: configs/dakd/saross_sos_sentinel.py.
_base_ = [
    '../_base_/models/saross_mambavision_b.py', '../_base_/datasets/sos_sentinel.py',
    '../_base_/default_runtime.py', '../_base_/schedules/adamw_200e.py'
]
# encoder windows = the level maps of the 256x256 tiles (16x16, 8x8): one whole-map window per token level, no padding
# (the ImageNet windows (8, 8, 14, 7) would zero-pad them to 28x28 and 14x14: twice the FLOPs and time)
model = dict(backbone=dict(window_size=(8, 8, 16, 8)))
