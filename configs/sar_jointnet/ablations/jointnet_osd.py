# Paper Table 1, row "JointNet" (Zhang et al., ICLR 2024) on OSD: FID 46.46, IS 1.929. Sec. 4.3: the baseline JointNet
# "is trained without utilizing the balancing factor and the cross entropy loss for label generation"; its FID/IS
# equal Table 5's row without CE and without b, so it is that model: pixel space, same U-Nets, exchange layers and
# three stages (the original JointNet is latent and locks its RGB branch, i.e. has no stage 3; the paper's
# baseline numbers are those of the no-CE/no-b SAR-JointNet, which is what is reproduced here).
_base_ = './no-ce-no-b_osd.py'
generation_cfg = dict(out_dir='data/daug/osd_jointnet')
