# VAPT on a frozen DeiT III-B/16, mixed into mmpretrain's DeiT III-B config.
#
# Everything but the model is the base's (ImageNet-1k data, schedule,
# runtime). The model: PromptedClassifier (frozen backbone), a VAPT neck, a
# new linear head for the base's 1000 classes, no classifier-level init_cfg
# (it would overwrite VAPT's zero-initialised token projectors) and no
# Mixup/CutMix. DeiT III adds its position embedding to the patches only;
# the prompts, as always, get none. See docs/mixing.md.
_base_ = 'mmpretrain::deit3/deit3-base-p16_64xb64_in1k.py'
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'deit3/deit3-base-p16_3rdparty_in1k_20221008-60b8c8bf.pth',
            prefix='backbone.')),
    neck=dict(_delete_=True, type='VAPTNeck', num_tokens=10),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768),
    init_cfg=None,
    train_cfg=None,
)
