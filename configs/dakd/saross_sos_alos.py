# DAKD on SOS-ALOS: real 256 tiles + SAR-JointNet 256 tiles with soft labels (no mosaic at this size).
_base_ = '../saross/sos_alos.py'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='DAKDDataset',
        real={{_base_.train_dataloader.dataset}},
        synthetic=dict(data_root='data/daug/sos_alos', label_mode='soft', max_samples=None, mosaic=False,
                       tile_uses_per_epoch=1.0)))
