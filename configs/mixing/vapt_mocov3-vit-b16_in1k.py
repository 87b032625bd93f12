# VAPT on a frozen MoCo v3 ViT-B/16, mixed into mmpretrain's MoCo v3
# linear-probe config (the MoCo v3 pre-training config builds no
# classifier).
#
# Everything but the model is the base's (ImageNet-1k data, SGD schedule,
# runtime). The model: PromptedClassifier (frozen backbone), a VAPT neck and
# a new linear head for the base's 1000 classes. The backbone stays
# MoCoV3ViT (fixed 2-D sin-cos position embedding) and loads the encoder of
# mmpretrain's MoCo v3 300-epoch pre-training checkpoint. See
# docs/mixing.md.
_base_ = 'mmpretrain::mocov3/benchmarks/vit-base-p16_8xb128-linear-coslr-90e_in1k.py'
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmselfsup/1.x/mocov3/'
            'mocov3_vit-base-p16_16xb256-amp-coslr-300e_in1k/'
            'mocov3_vit-base-p16_16xb256-amp-coslr-300e_in1k-224_'
            '20220826-25213343.pth',
            prefix='backbone.')),
    neck=dict(type='VAPTNeck', num_tokens=10),  # the base has no neck
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768),
)
