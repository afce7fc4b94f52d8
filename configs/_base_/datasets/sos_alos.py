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
# Three disjoint parts (issue 10): training, a validation part carved out of the training images (10 %, seed
# 0: the same ids on every machine, projects/sar_oilspill/datasets/val_split.py, listed by
# tools/dataset_tools/make_val_split.py) on which the checkpoint is selected (save_best), and the test split,
# evaluated once by tools/test.py. Another data root: set train_, val_ and test_dataloader.dataset.data_root.
val_split = dict(fraction=0.1, seed=0)
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train/palsar', seg_map_path='train/palsar'),
        split=dict(part='train', **val_split),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='test/palsar/sat', seg_map_path='test/palsar/gt'),
        pipeline=test_pipeline))
# validation: the same loader on the validation part of the training images
val_dataloader = dict(
    test_dataloader,
    dataset=dict(
        test_dataloader['dataset'],
        data_prefix=dict(img_path='train/palsar', seg_map_path='train/palsar'),
        split=dict(part='val', **val_split)))
