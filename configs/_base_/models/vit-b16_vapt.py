# VAPT on a frozen ViT-B/16 (ImageNet-21k supervised), as released by the
# authors: deep adaptive prompts from block 1 on, static prompts at block 0.
#
# The backbone weights come from checkpoints/vit-b16_in21k.pth, a plain
# VisionTransformer state dict without key prefix made by
# tools/model_converters (docs/pretrained_weights.md). A checkpoint whose
# keys start with 'backbone.' needs prefix='backbone.' in init_cfg.
# Override the path with
#     --cfg-options model.backbone.init_cfg.checkpoint=/path/to/vit.pth
model = dict(
    type='PromptedClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        drop_rate=0.0,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/vit-b16_in21k.pth')),
    neck=dict(
        type='VAPTNeck',
        num_tokens=10,
        kernel_size=2,
        padding=0,
        hidden_dim=8,
        mlp_dropout=0.1,
        conv_dropout=0.1,
        vpt_depth=1,
        dropout=0.0,
        share_projector=True),
    # num_classes: the task's class count (a task config sets it)
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)
