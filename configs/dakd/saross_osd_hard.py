# Table 7 "HL": the same synthetic tiles with hard labels (argmax of the teacher logits), so no KD term.
_base_ = './saross_osd.py'
train_dataloader = dict(dataset=dict(synthetic=dict(label_mode='hard')))
