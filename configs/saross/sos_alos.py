# SAROSS-Net on SOS-ALOS (ALOS-PALSAR, 256x256 tiles, oil / background). DAKD: configs/dakd/saross_sos_alos.py.
_base_ = [
    '../_base_/models/saross_mambavision_b.py', '../_base_/datasets/sos_alos.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_200e.py'
]
# encoder windows = the level maps of the 256x256 tiles (16x16, 8x8): one whole-map window per token level, no padding
# (the ImageNet windows (8, 8, 14, 7) would zero-pad them to 28x28 and 14x14: twice the FLOPs and time)
model = dict(backbone=dict(window_size=(8, 8, 16, 8)))
