import pytest
import torch
from mmpretrain.registry import MODELS
from reference_prompting import reference_logits
from tiny_models import tiny_backbone, tiny_head

import vapt_mm  # noqa: F401
from vapt_mm.models.necks import VPTNeck


def _vit_b16_neck_params(vit_b16, neck):
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=vit_b16, neck=neck))
    return sum(p.numel() for p in model.neck.parameters()
               if p.requires_grad)


@pytest.fixture(scope='module')
def vit_b16():
    return MODELS.build(dict(type='VisionTransformer', arch='b'))


def test_vit_b16_trainable_counts(vit_b16):
    assert _vit_b16_neck_params(
        vit_b16, dict(type='VPTNeck', num_tokens=10)) == 7_680
    assert _vit_b16_neck_params(
        vit_b16, dict(type='VPTNeck', num_tokens=10, deep=True)) == 92_160
    assert _vit_b16_neck_params(
        vit_b16, dict(type='VPTNeck', num_tokens=100, deep=True)) == 921_600


def test_uniform_init_bound_for_vit_b16():
    neck = VPTNeck(100, deep=True, embed_dims=768, num_layers=12,
                   patch_size=16, patch_grid=14)
    prompts = neck.prompts.prompts
    assert prompts.abs().max() <= 0.0625
    # uniform on [-v, v]: the extremes are reached and the variance is v^2/3
    assert prompts.abs().max() > 0.0624
    assert prompts.var().item() == pytest.approx(0.0625**2 / 3, rel=0.02)


@pytest.mark.parametrize('deep', [False, True])
def test_logits_equal_a_plain_reference_loop(deep):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
             neck=dict(type='VPTNeck', num_tokens=4, deep=deep, dropout=0.3),
             head=tiny_head('vit')))
    model.eval()
    images = torch.rand(3, 3, 32, 32)
    prompts = model.neck.prompts.prompts
    expected = reference_logits(model, images, prompts,
                                num_static=prompts.shape[0], deep=deep)
    torch.testing.assert_close(model(images), expected, atol=1e-5, rtol=0)


def test_shallow_and_deep_differ_only_after_block_zero():
    torch.manual_seed(0)
    kwargs = dict(embed_dims=32, num_layers=3, patch_size=8, patch_grid=4)
    shallow = VPTNeck(2, deep=False, **kwargs)
    deep = VPTNeck(2, deep=True, **kwargs)
    tokens = torch.rand(2, 17, 32)
    assert shallow.get_prompts(1, tokens, (4, 4), 1) is None
    assert deep.get_prompts(1, tokens, (4, 4), 1).shape == (2, 2, 32)


def test_prompt_dropout_masks_each_sample_in_training_only():
    torch.manual_seed(0)
    neck = VPTNeck(50, dropout=0.5, embed_dims=32, num_layers=2,
                   patch_size=8, patch_grid=4)
    neck.train()
    prompts = neck.get_prompts(0, torch.zeros(2, 17, 32), (4, 4), 1)
    assert not torch.equal(prompts[0] == 0, prompts[1] == 0)
    neck.eval()
    prompts = neck.get_prompts(0, torch.zeros(2, 17, 32), (4, 4), 1)
    assert torch.equal(prompts[0], neck.prompts.prompts[0])


@pytest.mark.parametrize('bad, match', [
    (dict(num_tokens=0), 'num_tokens must be a positive integer'),
    (dict(num_tokens=2, dropout=1.5), r'prompt dropout must be in \[0, 1\)'),
])
def test_bad_arguments_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        VPTNeck(embed_dims=32, num_layers=2, patch_size=8, patch_grid=4,
                **bad)


def test_missing_geometry_is_explained():
    with pytest.raises(ValueError, match='PromptedClassifier'):
        VPTNeck(4)
