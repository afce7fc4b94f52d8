# Test-time augmentation shared by the dataset bases (`tools/test.py CONFIG CKPT --tta`): the scene as is and flipped
# each way (SAR scenes have no preferred orientation); SegTTAModel averages the three softmax maps after flipping them
# back.
tta_pipeline = [
    dict(type='LoadOilSpillImage'),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='vertical'),
        ], [dict(type='LoadOilSpillAnnotations')], [dict(type='PackSegInputs')]])
]
