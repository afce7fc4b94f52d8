# Paper Table 5 (SAR-JointNet ablation, OSD), row without CE loss and without b: FID 46.46, IS 1.929, mIoU 71.67,
# F1 81.87 - the same FID/IS as JointNet in Table 1 (jointnet_osd.py is this model).
# Label-Net trained with the plain diffusion L2 loss on the mask x0 (no CE), b = 1. Everything else: ../osd.py.
_base_ = '../osd.py'
model = dict(balancing_factor=1.0, label_loss='l2')
generation_cfg = dict(out_dir='data/daug/osd_no-ce-no-b')
