# The demo's CPU-sized SAROSS-Net trained on random 128x128 crops of the synthetic scenes (tested on whole 256x256
# scenes): the real-data-only reference of the DAKD demo (configs/dakd/saross_synthetic_tiny.py), same pipeline.
_base_ = './synthetic_tiny.py'
train_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(type='LoadOilSpillAnnotations'),
    dict(type='RandomCrop', crop_size=(128, 128)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
