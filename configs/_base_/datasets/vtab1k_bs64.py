# VTAB-1k, final protocol: train on train800val200 (1,000 images), evaluate
# top-1 on test. Preprocessing (docs/method.md): resize to exactly 224x224
# (aspect ratio not kept), scale to [0, 1], ImageNet mean/std, no augmentation.
#
# Switch the task in a child config or on the command line; set all of these
# (the head's class count lives in the model config, see
# vapt_mm.datasets.VTAB1K_NUM_CLASSES):
#   --cfg-options train_dataloader.dataset.task=dtd \
#       val_dataloader.dataset.task=dtd test_dataloader.dataset.task=dtd \
#       model.head.num_classes=47
# Hyper-parameter search: train_dataloader.dataset.split=train800 and
# val_dataloader.dataset.split=val200.
# Without worker processes (num_workers=0) also set persistent_workers=False
# for every dataloader. See docs/datasets.md.
dataset_type = 'VTAB1k'
data_root = 'data/vtab-1k'

# ImageNet mean/std in 0-255 units; LoadImageFromFile gives BGR, so to_rgb.
# No num_classes here on purpose: it only matters for batch augmentations
# (none in VTAB-1k) and would go stale when the task is overridden.
data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

# PIL bicubic resize to 224x224, as the loaders of the common vtab-1k
# release (the one with the train800/val200 list files) do.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='Resize',
        scale=(224, 224),
        keep_ratio=False,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        task='eurosat',
        split='train800val200',
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
        task='eurosat',
        split='test',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
