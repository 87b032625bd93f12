# VAPT on a frozen DINOv2 ViT-B/14 at 224 px (a 16 x 16 patch grid), mixed
# into mmpretrain's DINOv2 ViT-B/14 config, trained on VTAB-1k (eurosat).
#
# The base is headless: a VisionTransformer with layer scale at 518 px and a
# data_preprocessor, no head, data, schedule or runtime. This config
#   * runs the backbone at 224 px: 16 x 16 patches, the grid VAPT's
#     token-wise projectors are built for; the 37 x 37 position embedding
#     of the checkpoint is resized when it is loaded;
#   * makes the classifier a PromptedClassifier (frozen backbone) with a
#     VAPT neck and a linear head on the CLS token (10 eurosat classes);
#   * takes the VTAB-1k schedule and runtime from configs/_base_.
# The data part repeats configs/_base_/datasets/vtab1k_bs64.py, which cannot
# be a second base here: both it and the DINOv2 base define
# `data_preprocessor` (with the same ImageNet mean/std), and mmengine
# refuses a key defined by two bases. tests/test_configs/
# test_mixing_configs.py checks that the two stay identical.
# Switch the task as in vtab1k_bs64.py, e.g. for dtd:
#   --cfg-options train_dataloader.dataset.task=dtd \
#       val_dataloader.dataset.task=dtd test_dataloader.dataset.task=dtd \
#       model.head.num_classes=47
_base_ = [
    'mmpretrain::dinov2/vit-base-p14_dinov2-pre_headless.py',
    '../_base_/schedules/vtab1k_sgd-cos-100e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        img_size=224,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpretrain/v1.0/'
            'dinov2/vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth',
            prefix='backbone.')),
    # the base sets neck=None and head=None; _delete_ replaces them
    neck=dict(_delete_=True, type='VAPTNeck', num_tokens=10),
    head=dict(
        _delete_=True, type='LinearClsHead', num_classes=10,
        in_channels=768),
)

# --- VTAB-1k data, as configs/_base_/datasets/vtab1k_bs64.py ---
dataset_type = 'VTAB1k'
data_root = 'data/vtab-1k'

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
