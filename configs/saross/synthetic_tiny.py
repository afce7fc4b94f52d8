# The embedded demo (`make demo`): CPU-sized SAROSS-Net on the synthetic OSD-layout scenes, 300 iterations.
_base_ = [
    '../_base_/models/saross_tiny_cpu.py', '../_base_/datasets/synthetic_osd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/cpu_demo.py'
]
model = dict(decode_head=dict(num_classes=5))
