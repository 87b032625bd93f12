"""Tiny instances of every supported backbone family, for fast tests."""
import copy

TINY_ARCH = dict(
    embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)

# name -> backbone config; all take 32x32 images with 8x8 patches (4x4 grid)
TINY_BACKBONES = {
    'vit': dict(type='VisionTransformer', arch=TINY_ARCH, img_size=32,
                patch_size=8, drop_rate=0.1, drop_path_rate=0.1),
    'clip-pre-norm': dict(type='VisionTransformer', arch=TINY_ARCH,
                          img_size=32, patch_size=8, pre_norm=True),
    'dinov2-layer-scale': dict(type='VisionTransformer', arch=TINY_ARCH,
                               img_size=28, patch_size=7,
                               layer_scale_init_value=1e-5),
    'deit-distilled': dict(type='DistilledVisionTransformer',
                           arch=TINY_ARCH, img_size=32, patch_size=8),
    'deit3': dict(type='DeiT3', arch=TINY_ARCH, img_size=32, patch_size=8),
    'mae': dict(type='MAEViT', arch=TINY_ARCH, img_size=32, patch_size=8,
                out_type='cls_token'),
    'mocov3': dict(type='MoCoV3ViT', arch=TINY_ARCH, img_size=32,
                   patch_size=8),
}

IMG_SIZE = {'dinov2-layer-scale': 28}


def image_size(name: str) -> int:
    return IMG_SIZE.get(name, 32)


def tiny_backbone(name: str, **overrides) -> dict:
    cfg = copy.deepcopy(TINY_BACKBONES[name])
    cfg.update(overrides)
    return cfg


def tiny_head(name: str, num_classes: int = 5) -> dict:
    if name == 'deit-distilled':
        return dict(type='DeiTClsHead', num_classes=num_classes,
                    in_channels=TINY_ARCH['embed_dims'])
    return dict(type='LinearClsHead', num_classes=num_classes,
                in_channels=TINY_ARCH['embed_dims'])


NECKS = {
    'vpt-shallow': dict(type='VPTNeck', num_tokens=3, deep=False,
                        dropout=0.1),
    'vpt-deep': dict(type='VPTNeck', num_tokens=3, deep=True, dropout=0.1),
    'vapt': dict(type='VAPTNeck', num_tokens=3),
}


def tiny_classifier(backbone: str = 'vit', neck: str = 'vapt',
                    **overrides) -> dict:
    cfg = dict(
        type='PromptedClassifier',
        backbone=tiny_backbone(backbone),
        neck=copy.deepcopy(NECKS[neck]) if neck else None,
        head=tiny_head(backbone))
    cfg.update(overrides)
    return cfg
