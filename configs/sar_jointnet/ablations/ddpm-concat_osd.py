# Paper Table 1, row "DDPM" (Ho et al. 2020) on OSD: FID 49.42, IS 2.149. Sec. 4.3: trained as in SatSynth, "SAR
# images and segmentation masks are simply concatenated as input": one U-Net (ConcatDDPM, the DDPM-256 layout of
# one SAR-JointNet branch) denoises [image, mask] (1 + 5 channels) with the same schedule and DDIM sampler; plain
# diffusion L2 loss on both (no CE), b = 1. A single network has no image-only stage: the 50K stage-1 iterations
# of ../osd.py are joint ones (stage 2), so the schedule is the same 300K at lr 1e-4, then 100K at 1e-5.
_base_ = '../osd.py'
model = dict(type='ConcatDDPM', balancing_factor=1.0, label_loss='l2', stage=2)
train_cfg = dict(stage_iters=(0, 300000, 100000))
generation_cfg = dict(out_dir='data/daug/osd_ddpm-concat')
