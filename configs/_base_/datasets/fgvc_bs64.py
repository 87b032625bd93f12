# FGVC (CUB-200-2011, NABirds, Oxford Flowers, Stanford Dogs, Stanford Cars)
# with the VPT authors' JSON splits. Final protocol: train on train+val
# ('trainval'), evaluate top-1 on test.
# Preprocessing as the VPT authors' torchvision code: train
# Resize(256) -> RandomCrop(224) -> horizontal flip; test Resize(256) ->
# CenterCrop(224); ImageNet mean/std. torchvision's Resize(256) scales the
# SHORT edge to 256 and keeps the aspect ratio, which is mmpretrain's
# ResizeEdge(scale=256, edge='short'); mmcv's Resize(scale=256) would squash
# the image to 256x256 instead, so it is not used here.
#
# Switch the data set (names: cub, nabirds, oxfordflower, stanforddogs,
# stanfordcars; class counts 200, 555, 102, 120, 196) with
#   --cfg-options train_dataloader.dataset.dataset=cub \
#       val_dataloader.dataset.dataset=cub \
#       test_dataloader.dataset.dataset=cub model.head.num_classes=200
# Hyper-parameter search: train_dataloader.dataset.split=train and
# val_dataloader.dataset.split=val. Without worker processes (num_workers=0)
# also set persistent_workers=False. See docs/datasets.md.
dataset_type = 'FGVC'
data_root = 'data/fgvc'

# ImageNet mean/std in 0-255 units; LoadImageFromFile gives BGR, so to_rgb.
# No num_classes: it only matters for batch augmentations (none here).
data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bilinear'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset='cub',
        split='trainval',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset='cub',
        split='test',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
