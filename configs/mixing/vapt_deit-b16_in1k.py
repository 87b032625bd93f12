# VAPT on a frozen DeiT-B/16, mixed into mmpretrain's own DeiT-B config.
#
# Everything but the model is the base's: ImageNet-1k data (data/imagenet),
# AdamW schedule, runtime and EMA hook (see docs/mixing.md to train on your
# own data). The model changes in four places:
#   * PromptedClassifier freezes the backbone (eval mode while training);
#   * a VAPT neck adds the adaptive prompts;
#   * a new linear head (1000 classes for the base's ImageNet-1k data);
#   * no classifier-level init_cfg: the base's TruncNormal init of every
#     Linear would overwrite VAPT's zero-initialised token projectors; and
#     no Mixup/CutMix batch augments (the VAPT protocol trains without).
# The backbone loads the official DeiT-B weights from the mmpretrain zoo.
_base_ = 'mmpretrain::deit/deit-base_16xb64_in1k.py'
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'deit/deit-base_3rdparty_pt-16xb64_in1k_20211124-6f40c188.pth',
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
