# VAPT on a frozen MAE ViT-B/16, mixed into mmpretrain's MAE linear-probe
# config (the MAE pre-training config builds no classifier).
#
# Everything but the model is the base's (ImageNet-1k data, LARS schedule
# with AmpOptimWrapper, runtime). The model: PromptedClassifier (frozen
# backbone; the base's frozen_stages=12 is then redundant), a VAPT neck in
# place of the base's ClsBatchNormNeck, and a new linear head reading the
# CLS token after the final norm, as in the VAPT protocol. The backbone
# loads the encoder of mmpretrain's MAE 1600-epoch pre-training checkpoint.
# See docs/mixing.md.
_base_ = 'mmpretrain::mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

model = dict(
    type='PromptedClassifier',
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmselfsup/1.x/mae/'
            'mae_vit-base-p16_8xb512-fp16-coslr-1600e_in1k/'
            'mae_vit-base-p16_8xb512-fp16-coslr-1600e_in1k_'
            '20220825-f7569ca2.pth',
            prefix='backbone.')),
    neck=dict(_delete_=True, type='VAPTNeck', num_tokens=10),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768),
)
