# DAKD on the embedded synthetic scenes (`make demo-dakd`): real 128x128 crops (hard labels) + 2x2 mosaics of four
# 64x64 tiles of configs/sar_jointnet/synthetic_tiny_cpu.py (soft labels), CE + KD + soft Dice.
_base_ = '../saross/synthetic_tiny_crop128.py'
# tile_uses_per_epoch=4: one mosaic per tile (as before): the tiny D_aug weighs as much as the real crops.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='DAKDDataset',
        real={{_base_.train_dataloader.dataset}},
        synthetic=dict(data_root='data/daug/synthetic_tiny_cpu', label_mode='soft', max_samples=None, mosaic=True,
                       tile_uses_per_epoch=4.0)))
