import pytest
import torch
from mmpretrain.registry import MODELS
from reference_prompting import reference_logits
from tiny_models import tiny_backbone, tiny_head

import vapt_mm  # noqa: F401
from vapt_mm.models.necks import VAPTNeck

TINY_GEOMETRY = dict(embed_dims=32, num_layers=3, patch_size=8, patch_grid=4)


@pytest.fixture(scope='module')
def vit_b16():
    return MODELS.build(dict(type='VisionTransformer', arch='b'))


@pytest.mark.parametrize('kernel_size, expected', [(2, 55_608), (3, 52_913),
                                                   (5, 48_249), (7, 44_553),
                                                   (14, 39_240)])
def test_vit_b16_trainable_counts(vit_b16, kernel_size, expected):
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=vit_b16,
             neck=dict(type='VAPTNeck', num_tokens=10,
                       kernel_size=kernel_size, hidden_dim=8),
             head=dict(type='LinearClsHead', num_classes=10,
                       in_channels=768)))
    trainable = {n: p.numel() for n, p in model.named_parameters()
                 if p.requires_grad}
    head = sum(v for n, v in trainable.items() if n.startswith('head.'))
    assert head == 768 * 10 + 10
    assert sum(trainable.values()) - head == expected


@pytest.mark.parametrize('training', [False, True])
def test_adaptive_prompts_are_zero_at_init(training):
    neck = VAPTNeck(5, vpt_depth=1, **TINY_GEOMETRY)
    neck.train(training)
    tokens = torch.randn(2, 17, 32)
    for index in (1, 2):
        prompts = neck.get_prompts(index, tokens, (4, 4), 1)
        assert prompts.shape == (2, 5, 32)
        assert torch.count_nonzero(prompts) == 0
    static = neck.get_prompts(0, tokens, (4, 4), 1)
    assert torch.count_nonzero(static) > 0


def _randomise(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


@pytest.mark.parametrize('settings', [
    dict(),
    dict(vpt_depth=0),
    dict(vpt_depth=2, kernel_size=3, padding=1),
    dict(share_projector=False, hidden_dim=4),
    dict(kernel_size=4),
])
def test_logits_equal_a_plain_reference_loop(settings):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
             neck=dict(type='VAPTNeck', num_tokens=4, **settings),
             head=tiny_head('vit')))
    _randomise(model.neck)  # zero projectors would hide most of the path
    model.eval()
    images = torch.rand(3, 3, 32, 32)
    neck = model.neck
    static = (neck.static_prompts.prompts if neck.static_prompts is not None
              else torch.zeros(0, 4, 32))
    expected = reference_logits(model, images, static,
                                num_static=neck.vpt_depth, vapt=neck)
    torch.testing.assert_close(model(images), expected, atol=1e-5, rtol=0)


def test_full_vpt_depth_is_vpt_deep_with_the_same_prompts():
    torch.manual_seed(0)
    common = dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
                  head=tiny_head('vit'))
    vapt = MODELS.build(
        dict(common, neck=dict(type='VAPTNeck', num_tokens=4, vpt_depth=3)))
    vpt = MODELS.build(
        dict(common, neck=dict(type='VPTNeck', num_tokens=4, deep=True)))
    vpt.backbone.load_state_dict(vapt.backbone.state_dict())
    vpt.head.load_state_dict(vapt.head.state_dict())
    with torch.no_grad():
        vpt.neck.prompts.prompts.copy_(vapt.neck.static_prompts.prompts)
    assert len(vapt.neck.generators) == 0 and len(vapt.neck.projectors) == 0
    vapt.eval()
    vpt.eval()
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(vapt(images), vpt(images), atol=0, rtol=0)


def test_another_patch_grid_is_refused_naming_both_grids():
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
             neck=dict(type='VAPTNeck', num_tokens=2),
             head=tiny_head('vit')))
    with pytest.raises(ValueError, match=r'built for a 4x4 patch grid.*'
                       r'gives a 6x5 grid'):
        model(torch.rand(1, 3, 48, 40))


def test_shallow_vapt_is_refused_with_the_alternatives():
    with pytest.raises(ValueError, match=r'deep prompts only.*'
                       r'VPTNeck\(deep=False\).*vpt_depth=0'):
        VAPTNeck(4, deep=False, **TINY_GEOMETRY)


@pytest.mark.parametrize('bad, match', [
    (dict(vpt_depth=4), r'vpt_depth must be in \[0, 3\]'),
    (dict(vpt_depth=-1), r'vpt_depth must be in \[0, 3\]'),
    (dict(kernel_size=5), r'kernel_size=5 with padding=0 does not fit the '
     r'4x4 patch grid'),
    (dict(conv_dropout=1.0), r'conv_dropout must be in \[0, 1\)'),
])
def test_bad_arguments_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        VAPTNeck(4, **bad, **TINY_GEOMETRY)


def test_conv_dropout_drops_whole_channels_in_training():
    torch.manual_seed(0)
    neck = VAPTNeck(3, vpt_depth=0, conv_dropout=0.5, mlp_dropout=0.0,
                    **TINY_GEOMETRY)
    _randomise(neck)
    generator = neck.generators[0]
    seen = {}
    generator.conv_drop.register_forward_hook(
        lambda m, i, o: seen.setdefault('map', o))
    neck.train()
    neck.get_prompts(0, torch.randn(2, 17, 32), (4, 4), 1)
    dropped = seen['map'].flatten(2).abs().sum(-1) == 0  # (B, d) channels
    assert dropped.any() and not dropped.all()
