# SAROSS-Net on SOS-ALOS (ALOS-PALSAR, 256x256 tiles, oil / background). DAKD: configs/dakd/saross_sos_alos.py.
_base_ = [
    '../_base_/models/saross_mambavision_b.py', '../_base_/datasets/sos_alos.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_200e.py'
]
