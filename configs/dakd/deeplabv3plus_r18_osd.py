# DAKD with a stock mmseg model: DeepLabV3+ R18 (mmseg's DepthwiseSeparableASPPHead + FCNHead auxiliary head), its
# decode head unmodified, trained with CE + KD + generalised Dice (configs/_base_/models/dakd_losses.py) on OSD: real
# random 512 crops (hard labels) + 2x2 mosaics of four 256 D_aug tiles (soft labels), 4480 tiles -> 1120 mosaics per
# epoch beside the 1002 real images.
# The model is configs/baselines/deeplabv3plus_r18_osd.py inside a SoftLabelEncoderDecoder (which gives the stock head
# the soft-label loss loop) with a SoftLabelSegDataPreProcessor (pads the soft labels with the image). Generate D_aug
# first into data/daug/osd (configs/sar_jointnet/osd.py, tools/generate_daug.py).
_base_ = ['../baselines/deeplabv3plus_r18_osd.py', '../_base_/models/dakd_losses.py']
model = dict(
    type='SoftLabelEncoderDecoder',
    data_preprocessor=dict(type='SoftLabelSegDataPreProcessor'),
    auxiliary_head=dict(loss_decode={{_base_.dakd_aux_loss_decode}}),
    decode_head=dict(loss_decode={{_base_.dakd_loss_decode}}))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='DAKDDataset',
        real={{_base_.train_dataloader.dataset}},
        synthetic=dict(data_root='data/daug/osd', label_mode='soft', max_samples=None, mosaic=True,
                       tile_uses_per_epoch=1.0)))
