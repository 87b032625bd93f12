"""Tiny prompt-tuned models for the tests of vapt_mm.apis."""
import copy

import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from tiny_models import tiny_backbone, tiny_classifier

import vapt_mm  # noqa: F401  (registers the models and the loader)

NUM_CLASSES = 5
PREPROCESSOR = dict(
    type='ClsDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)


def write_backbone(path, seed: int) -> str:
    """A tiny ViT's weights as a plain state dict, from ``seed``."""
    torch.manual_seed(seed)
    backbone = MODELS.build(tiny_backbone('vit'))
    backbone.init_weights()
    torch.save(backbone.state_dict(), str(path))
    return str(path)


def model_cfg(pretrained: str, method: str = 'vapt', **overrides) -> dict:
    """A tiny PromptedClassifier (``method``: a neck of
    ``tiny_models.NECKS``) whose backbone loads ``pretrained``; dict
    ``overrides`` update the parts of the same name."""
    cfg = tiny_classifier('vit', method)
    cfg['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=pretrained)
    cfg['data_preprocessor'] = copy.deepcopy(PREPROCESSOR)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def trained_model(cfg: dict, seed: int = 7) -> torch.nn.Module:
    """Build and initialise ``cfg``, then give the neck and head random
    values (as training would), in eval mode."""
    init_default_scope('mmpretrain')
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.copy_(
                    torch.randn(param.shape, generator=generator) * 0.5)
    return model.eval()


def fresh_model(cfg: dict) -> torch.nn.Module:
    """``cfg`` built, not initialised (as get_model and tools/test.py
    build it)."""
    init_default_scope('mmpretrain')
    return MODELS.build(copy.deepcopy(cfg))
