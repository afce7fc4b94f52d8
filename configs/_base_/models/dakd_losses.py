# The DAKD loss (paper Eq. 10) as a decode-head loss_decode, shared by SAROSS-Net and the stock mmseg models of
# configs/dakd/: CE on hard labels (averaged over labelled pixels, so soft-only samples do not dilute it)
# + KD on the teacher's logits (Eq. 8-9, temperature T) + Dice on hard one-hot / teacher-softmax targets.
# lambda_kd = 1, lambda_dice = 1, T = 2 are this project's choice (the paper's values were lost from its text).
# Dice: Sudre et al.'s generalised Dice (class weights 1 / (target mass)^2), which the paper cites "to mitigate the
# class imbalance"; the plain class-mean Dice is one key away:
#   --cfg-options model.decode_head.loss_decode.2.use_generalised_weights=False
# The Dice's target on a pixel with teacher logits only is softmax(logits / soft_temperature), 1 by default (the
# teacher's own estimate); the KD temperature makes it no harder than the KD target:
#   --cfg-options model.decode_head.loss_decode.2.soft_temperature=2.0
# Used through {{_base_.dakd_loss_decode}}: a decode head configured with it needs a SoftLabelEncoderDecoder.
dakd_loss_decode = [
    dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
    dict(type='KDLoss', temperature=2.0, loss_weight=1.0),
    dict(type='SoftDiceLoss', use_generalised_weights=True, loss_weight=1.0),
]

# The auxiliary heads of the stock models (UNet's and DeepLabV3+'s FCNHead, loss weight 0.4 as in their baseline
# configs): CE on hard labels only, averaged over labelled pixels so soft-only samples do not dilute it. Used through
# auxiliary_head=dict(loss_decode={{_base_.dakd_aux_loss_decode}}).
dakd_aux_loss_decode = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4, avg_non_ignore=True)
