# Supplementary Table 11: 1x the real set of synthetic tiles (1120 of the 4480 generated; 280 mosaics per epoch
# beside the 1002 real images, each tile used once).
_base_ = './saross_osd.py'
train_dataloader = dict(dataset=dict(synthetic=dict(max_samples=1120)))
