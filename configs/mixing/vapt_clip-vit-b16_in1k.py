# VAPT on a frozen CLIP ViT-B/16 image encoder, mixed into mmpretrain's CLIP
# ViT-B/16 config.
#
# Everything but the model is the base's (ImageNet-1k data, schedule,
# runtime). The model: PromptedClassifier (frozen backbone), a VAPT neck, a
# new linear head for the base's 1000 classes and no Kaiming init_cfg on
# the backbone (it loads weights instead). CLIP's encoder is a
# VisionTransformer with pre_norm=True: the norm after the position
# embedding acts before the prompts are inserted, so the prompts enter the
# blocks as they are. The weights are mmpretrain's conversion of OpenAI's
# CLIP ViT-B/16 (fine-tuned on ImageNet-1k by timm). See docs/mixing.md.
_base_ = 'mmpretrain::clip/vit-base-p16_pt-64xb64_in1k.py'
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'clip/clip-vit-base-p16_openai-pre_3rdparty_in1k_'
            '20221220-c7d9c899.pth',
            prefix='backbone.')),
    neck=dict(_delete_=True, type='VAPTNeck', num_tokens=10),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768),
)
