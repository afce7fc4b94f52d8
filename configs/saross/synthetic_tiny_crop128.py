# The real-data-only reference of the DAKD demo (configs/dakd/saross_synthetic_tiny.py): the demo's CPU-sized
# SAROSS-Net on random 128x128 crops of the synthetic scenes (tested on whole 256x256 scenes). Since the demo config
# itself trains on 128x128 crops this is the same config, kept under this name for the DAKD demo and older commands.
_base_ = './synthetic_tiny.py'
