# CBD-Net (Zhu et al., IEEE TGRS 2022; the SOS dataset authors' network), re-implemented from its public release
# (CUG-URS/Marine-Oil-Spill-Detection-Network-CBDNet): ResNet-34 with scSE after each stage (SCSEResNet), dilated
# center block + D-LinkNet decoder, CE + Dice multiplied by the boundary F1 loss (CBDNetHead). Input scaling as the
# release (x / 255 * 3.2 - 1.6). The release starts from torchvision's ImageNet ResNet-34; nothing is downloaded
# here: pass a local file with --cfg-options model.backbone.init_cfg.type=Pretrained
# model.backbone.init_cfg.checkpoint=PATH (the scSE weights then start from scratch).
_base_ = './linknet_r18.py'
model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[79.6875, 79.6875, 79.6875]),
    backbone=dict(type='SCSEResNet', depth=34, scse_reduction=2),
    decode_head=dict(
        type='CBDNetHead',
        center_dilations=(1, 2, 4, 8),
        final_kernel=4,
        final_norm=False,
        boundary_mode='multiply',
        boundary_kernel=3,
        boundary_tolerance=5,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, loss_name='loss_ce'),
            dict(type='SoftDiceLoss', loss_weight=1.0, loss_name='loss_dice')
        ]))
