# Paper Table 5 (SAR-JointNet ablation, OSD), row "w/o CE loss, scale w/ b": FID 32.28, IS 2.206, mIoU 72.65, F1 82.77.
# (The text lost the table's check marks; rows follow Sec. 5: CE improves mIoU/F1, b improves FID/IS.)
# Label-Net is trained with the plain diffusion L2 loss on the x0 of the b-scaled mask instead of CE (Eq. 6); sampling
# uses that x0 (clipped to [-b, b]) in place of Eq. 21. Stages, b = 0.528 and everything else: ../osd.py.
_base_ = '../osd.py'
model = dict(label_loss='l2')
generation_cfg = dict(out_dir='data/daug/osd_no-ce')
