# DAKD with a stock mmseg model: UNet S5-D16 (mmseg's UNet + FCNHead, FCNHead auxiliary head), its decode head
# unmodified, trained with CE + KD + generalised Dice (configs/_base_/models/dakd_losses.py) on SOS-ALOS: real 256
# tiles (hard labels) + 256 D_aug tiles (soft labels), each once per epoch.
# The model is configs/baselines/unet_sos_alos.py inside a SoftLabelEncoderDecoder (which gives the stock head the
# soft-label loss loop) with a SoftLabelSegDataPreProcessor (pads the soft labels with the image). Generate D_aug
# first into data/daug/sos_alos (configs/sar_jointnet/sos_alos.py, tools/generate_daug.py).
_base_ = ['../baselines/unet_sos_alos.py', '../_base_/models/dakd_losses.py']
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
        synthetic=dict(data_root='data/daug/sos_alos', label_mode='soft', max_samples=None, mosaic=False,
                       tile_uses_per_epoch=1.0)))
