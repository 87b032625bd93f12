"""configs/mixing: VAPT mixed into mmpretrain's own model configs.

Each config loads with ``Config.fromfile`` (its ``mmpretrain::`` base comes
from the installed wheel) and builds a ViT-B PromptedClassifier; the
pretrained init is dropped (nothing is downloaded in tests).
"""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import vapt_mm  # noqa: F401
from vapt_mm.models.necks import VAPTNeck

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs')
MIXING = osp.join(CONFIG_DIR, 'mixing')

# config -> (mmpretrain base, backbone class, patch grid, patch size,
#            head classes)
EXPECTED = {
    'vapt_deit-b16_in1k.py':
    ('deit/deit-base_16xb64_in1k.py', 'VisionTransformer', (14, 14), 16,
     1000),
    'vapt_deit3-b16_in1k.py':
    ('deit3/deit3-base-p16_64xb64_in1k.py', 'DeiT3', (14, 14), 16, 1000),
    'vapt_mae-vit-b16_in1k.py':
    ('mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py',
     'VisionTransformer', (14, 14), 16, 1000),
    'vapt_mocov3-vit-b16_in1k.py':
    ('mocov3/benchmarks/vit-base-p16_8xb128-linear-coslr-90e_in1k.py',
     'MoCoV3ViT', (14, 14), 16, 1000),
    'vapt_clip-vit-b16_in1k.py':
    ('clip/vit-base-p16_pt-64xb64_in1k.py', 'VisionTransformer', (14, 14),
     16, 1000),
    'vapt_dinov2-vit-b14-224px_vtab1k.py':
    ('dinov2/vit-base-p14_dinov2-pre_headless.py', 'VisionTransformer',
     (16, 16), 14, 10),
}

TINY_ARCH = dict(
    embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)


def _load(name):
    return Config.fromfile(osp.join(MIXING, name))


def _model_cfg(cfg):
    """The config's model as the Runner builds it, with a random backbone."""
    model = copy.deepcopy(cfg.model)
    model.backbone.pop('init_cfg', None)
    model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    return model


def _vapt_count(p, d, layers, grid, k, r):
    """Neck parameters as docs/method.md counts them: one static prompt
    set, then per adaptive block a LayerNorm, a K x K kernel and
    Linear(H'W' -> p); one shared feature projector."""
    h, w = grid[0] - k + 1, grid[1] - k + 1
    per_block = 2 * d + k * k + h * w * p + p
    return p * d + (layers - 1) * per_block + 2 * d * r


def test_every_mixing_config_is_covered():
    found = {osp.basename(p) for p in glob.glob(osp.join(MIXING, '*.py'))}
    assert found == set(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_takes_the_mmpretrain_config_and_adds_vapt(name):
    base, _, _, _, _ = EXPECTED[name]
    cfg = _load(name)
    with open(osp.join(MIXING, name), encoding='utf-8') as f:
        text = f.read()
    assert f"'mmpretrain::{base}'" in text
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports == dict(
        imports=['vapt_mm'], allow_failed_imports=False)
    assert cfg.model.type == 'PromptedClassifier'
    assert cfg.model.neck.type == 'VAPTNeck'
    assert cfg.model.head.type == 'LinearClsHead'
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    assert init_cfg.checkpoint.startswith('https://download.openmmlab.com/')


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_builds_a_prompted_vit_b(name):
    _, backbone_type, grid, patch, num_classes = EXPECTED[name]
    model = MODELS.build(_model_cfg(_load(name)))
    assert type(model.backbone).__name__ == backbone_type
    assert isinstance(model.neck, VAPTNeck)
    assert model.neck.patch_grid == grid
    assert model.neck.patch_size == (patch, patch)
    assert model.head.num_classes == num_classes
    assert not any(p.requires_grad for p in model.backbone.parameters())
    neck = sum(p.numel() for p in model.neck.parameters())
    assert neck == _vapt_count(10, 768, 12, grid, 2, 8)
    head = sum(p.numel() for p in model.head.parameters())
    assert head == 768 * num_classes + num_classes
    assert set(model.trainable_parameter_names) == {
        n for n, _ in model.named_parameters()
        if n.startswith(('neck.', 'head.'))
    }


def test_vit_b16_count_is_the_published_one():
    assert _vapt_count(10, 768, 12, (14, 14), 2, 8) == 55_608


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_init_weights_keeps_adaptive_prompts_zero(name):
    # The bases' classifier-level init (e.g. TruncNormal on every Linear)
    # must not reach the neck. A tiny backbone keeps this fast; the neck
    # and the classifier's init_cfg are the config's own.
    cfg = _load(name)
    model_cfg = _model_cfg(cfg)
    model_cfg.backbone.update(arch=TINY_ARCH, img_size=32, patch_size=8)
    if 'frozen_stages' in model_cfg.backbone:  # the linear-probe bases
        model_cfg.backbone.frozen_stages = TINY_ARCH['num_layers']
    model_cfg.head.update(in_channels=64)
    model = MODELS.build(model_cfg)
    model.init_weights()
    for generator in model.neck.generators:
        assert torch.count_nonzero(generator.token_projector.weight) == 0
        assert torch.count_nonzero(generator.token_projector.bias) == 0
    model.eval()
    feats = model.extract_feat(torch.rand(1, 3, 32, 32), stage='backbone')
    logits = model.head(feats)
    assert logits.shape == (1, model.head.num_classes)


def test_dinov2_config_repeats_the_vtab1k_data_exactly():
    dinov2 = _load('vapt_dinov2-vit-b14-224px_vtab1k.py')
    vtab = Config.fromfile(
        osp.join(CONFIG_DIR, '_base_', 'datasets', 'vtab1k_bs64.py'))
    for key in vtab.keys():
        assert dinov2[key] == vtab[key], key
