# SOS dataset, ALOS-PALSAR part (Gulf of Mexico), 256x256 tiles. Layout: see SOSDataset / README.
_base_ = './tta_flip.py'  # tta_pipeline
dataset_type = 'SOSDataset'
data_root = 'data/sos'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train/palsar', seg_map_path='train/palsar'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='test/palsar/sat', seg_map_path='test/palsar/gt'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
