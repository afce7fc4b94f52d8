# Supplementary Table 11: 2x the real set of synthetic tiles (2240 of the 4480 generated; 560 mosaics per epoch
# beside the 1002 real images, each tile used once).
_base_ = './saross_osd.py'
train_dataloader = dict(dataset=dict(synthetic=dict(max_samples=2240)))
