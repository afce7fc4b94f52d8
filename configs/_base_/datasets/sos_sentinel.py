# SOS dataset, Sentinel-1A part (Persian Gulf): same pipelines and train/val/test parts as SOS-ALOS, other folders.
_base_ = './sos_alos.py'
train_dataloader = dict(dataset=dict(data_prefix=dict(img_path='train/sentinel', seg_map_path='train/sentinel')))
val_dataloader = dict(dataset=dict(data_prefix=dict(img_path='train/sentinel', seg_map_path='train/sentinel')))
test_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='test/sentinel/sat', seg_map_path='test/sentinel/gt')))
