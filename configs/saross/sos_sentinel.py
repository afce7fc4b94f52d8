# SAROSS-Net on SOS-Sentinel (Sentinel-1A, 256x256 tiles). DAKD: configs/dakd/saross_sos_sentinel.py.
_base_ = [
    '../_base_/models/saross_mambavision_b.py', '../_base_/datasets/sos_sentinel.py',
    '../_base_/default_runtime.py', '../_base_/schedules/adamw_200e.py'
]
