# SOS dataset, ALOS-PALSAR part (Gulf of Mexico), 256x256 tiles. Layout: see SOSDataset / README.
dataset_type = 'SOSDataset'
data_root = 'data/sos'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='PackSegInputs'),
]
# Test-time augmentation (`tools/test.py CONFIG CKPT --tta`): the scene as is and flipped each way (SAR scenes have no
# preferred orientation); SegTTAModel averages the three softmax maps after flipping them back.
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='vertical'),
        ], [dict(type='LoadOilSpillAnnotations')], [dict(type='PackSegInputs')]])
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
