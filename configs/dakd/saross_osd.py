# DAKD on OSD (the paper's full method, Tables 3/4): SAROSS-Net trained on the real set (random 512 crops, hard
# labels) + 2x2 mosaics of four 256x256 SAR-JointNet tiles with their soft labels (teacher logits); loss
# CE + KD + soft Dice (Eq. 10). Generate D_aug first (configs/sar_jointnet/osd.py, tools/generate_daug.py) into
# data/daug/osd; 4480 tiles = 4x the real set (supplementary Table 11). Real:synthetic mix: each tile used once per
# epoch (tile_uses_per_epoch=1.0): 1120 mosaics beside the 1002 real images.
_base_ = '../saross/osd.py'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='DAKDDataset',
        real={{_base_.train_dataloader.dataset}},
        synthetic=dict(data_root='data/daug/osd', label_mode='soft', max_samples=None, mosaic=True,
                       tile_uses_per_epoch=1.0)))
