# Full fine-tuning: every ViT-B/16 (ImageNet-21k supervised) weight trains,
# with a new linear head on the CLS token and no prompts (the "Full" rows of
# the VPT / VAPT tables). PromptedClassifier with freeze_backbone=False keeps
# the same backbone, head and checkpoint handling as the prompt configs.
#
# The backbone weights come from checkpoints/vit-b16_in21k.pth
# (docs/pretrained_weights.md). Override the path with
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
    neck=None,
    freeze_backbone=False,
    # num_classes: the task's class count (a task config sets it)
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)
