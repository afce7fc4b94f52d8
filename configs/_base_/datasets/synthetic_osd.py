# The embedded default: synthetic SAR scenes in OSD's layout and classes, made by
#   python tools/dataset_tools/make_synthetic_osd.py data/synthetic_osd
_base_ = './osd.py'
data_root = 'data/synthetic_osd'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
