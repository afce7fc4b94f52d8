# CPU-sized SAROSS-Net on SOS-ALOS (e.g. the real subset: --cfg-options ...data_root=../shared/data/sos_mini).
_base_ = [
    '../_base_/models/saross_tiny_cpu.py', '../_base_/datasets/sos_alos.py', '../_base_/default_runtime.py',
    '../_base_/schedules/cpu_demo.py'
]
train_dataloader = dict(batch_size=8, num_workers=2)
