"""timm ViTs (through mmpretrain's TIMMBackbone) as prompt-tuning backbones.

Tiny timm ViTs: 64 wide, 2 blocks, 4 heads, 32 px images, 8 px patches
(a 4 x 4 grid).
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from reference_prompting import channel_wise_conv

import vapt_mm  # noqa: F401
from vapt_mm.models.backbones import (TIMMVisionTransformerAdapter,
                                      build_backbone_adapter)
from vapt_mm.models.necks import run_backbone
from vapt_mm.converters import convert_timm_vit

TINY_TIMM_VIT = dict(
    type='TIMMBackbone',
    model_name='vit_tiny_patch16_224',
    img_size=32,
    patch_size=8,
    embed_dim=64,
    depth=2,
    num_heads=4,
    mlp_ratio=2.0)

# variant -> (extra create_model arguments, prefix tokens)
VARIANTS = {
    'plain': (dict(), 1),
    'register-tokens': (dict(reg_tokens=2, no_embed_class=True), 3),
    'no-class-token-avg': (dict(class_token=False, global_pool='avg'), 0),
    'registers-without-class-token': (dict(
        class_token=False, reg_tokens=2, global_pool='avg'), 2),
    'clip-pre-norm': (dict(pre_norm=True), 1),
    'dinov2-layer-scale': (dict(init_values=1e-5, reg_tokens=4), 5),
    'dynamic-img-size': (dict(dynamic_img_size=True), 1),
}


def timm_backbone(variant='plain', **overrides):
    cfg = copy.deepcopy(TINY_TIMM_VIT)
    cfg.update(VARIANTS[variant][0])
    cfg.update(overrides)
    return cfg


def timm_distilled_backbone():
    cfg = copy.deepcopy(TINY_TIMM_VIT)
    cfg['model_name'] = 'deit_tiny_distilled_patch16_224'
    cfg.pop('mlp_ratio')
    return cfg


def _randomise(module, seed=0):
    """Random neck parameters: VAPT's zero-initialised projectors would
    make every adaptive prompt zero and hide most of the computation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_without_prompts_it_is_the_timm_backbone_forward(variant):
    torch.manual_seed(0)
    backbone = MODELS.build(timm_backbone(variant))
    backbone.eval()  # mmpretrain backbones' train() returns None
    images = torch.rand(2, 3, 32, 32)
    expected = backbone(images)
    got = run_backbone(build_backbone_adapter(backbone), images)
    assert len(got) == len(expected) == 1
    assert torch.equal(got[0], expected[0])
    prefix = VARIANTS[variant][1]
    assert got[0].shape == (2, prefix + 16, 64)


def test_distilled_deit_without_prompts_is_the_timm_backbone_forward():
    torch.manual_seed(0)
    backbone = MODELS.build(timm_distilled_backbone())
    backbone.eval()
    adapter = build_backbone_adapter(backbone)
    assert adapter.num_prefix_tokens == 2
    images = torch.rand(2, 3, 32, 32)
    expected = backbone(images)
    got = run_backbone(adapter, images)
    # timm's distilled head averages the CLS and distillation tokens
    assert got[0].shape == (2, 64)
    assert torch.equal(got[0], expected[0])


def test_dynamic_img_size_follows_the_input_grid():
    torch.manual_seed(0)
    backbone = MODELS.build(timm_backbone('dynamic-img-size'))
    backbone.eval()
    adapter = build_backbone_adapter(backbone)
    images = torch.rand(2, 3, 48, 40)  # a 6 x 5 grid
    tokens, hw = adapter.embed(images)
    assert hw == (6, 5)
    assert tokens.shape == (2, 1 + 30, 64)
    assert torch.equal(run_backbone(adapter, images)[0], backbone(images)[0])


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_geometry_reported_to_the_neck(variant):
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=timm_backbone(variant),
             neck=dict(type='VAPTNeck', num_tokens=3)))
    adapter = model.backbone_adapter
    assert isinstance(adapter, TIMMVisionTransformerAdapter)
    assert adapter.num_prefix_tokens == VARIANTS[variant][1]
    assert adapter.geometry() == dict(
        embed_dims=64, num_layers=2, patch_size=(8, 8), patch_grid=(4, 4),
        num_prefix_tokens=VARIANTS[variant][1])
    assert adapter.out_indices == (1, )
    assert model.neck.patch_grid == (4, 4)
    trainable = {n.split('.')[0] for n, p in model.named_parameters()
                 if p.requires_grad}
    assert trainable == {'neck'}


def _reference_tokens(timm_vit, images, prompts_for_block):
    """Prompted timm ViT written out by hand, for ``no_embed_class=True``:
    position embedding on the patches, then [CLS? | registers | prompts |
    patches]; ``prompts_for_block(index, tokens_without_prompts, c)`` gives
    each block's prompts. Returns the final tokens without prompts."""
    patches = timm_vit.patch_embed(images) + timm_vit.pos_embed
    batch = patches.shape[0]
    prefix = [t.expand(batch, -1, -1)
              for t in (timm_vit.cls_token, timm_vit.reg_token)
              if t is not None]
    c = sum(t.shape[1] for t in prefix)
    x = torch.cat(prefix + [patches], dim=1)
    p = 0
    for index, block in enumerate(timm_vit.blocks):
        without = torch.cat([x[:, :c], x[:, c + p:]], dim=1)
        prompts = prompts_for_block(index, without, c)
        p = prompts.shape[1]
        x = block(torch.cat([without[:, :c], prompts, without[:, c:]],
                            dim=1))
    # final norm; with global_pool='avg' timm builds fc_norm instead, which
    # TIMMBackbone (pooling reset to '') applies to every token
    x = timm_vit.fc_norm(timm_vit.norm(x))
    return torch.cat([x[:, :c], x[:, c + p:]], dim=1)


def _vapt_prompts(neck, index, tokens, num_prefix):
    """VAPT steps (docs/method.md) with explicit arithmetic, any number of prefix
    tokens (the patches are the tokens after all of them)."""
    if index < neck.vpt_depth:
        return neck.static_prompts.prompts[index].expand(
            tokens.shape[0], -1, -1)
    generator = neck.generators[index - neck.vpt_depth]
    ln = generator.norm
    normed = F.layer_norm(tokens, ln.normalized_shape, ln.weight, ln.bias,
                          ln.eps)
    patches = normed[:, num_prefix:]
    feature_map = patches.reshape(patches.shape[0], 4, 4, -1)
    conv = channel_wise_conv(feature_map, generator.kernel,
                             generator.padding).flatten(1, 2)
    weight = generator.token_projector.weight
    prompts = torch.einsum('bnd,pn->bpd', conv, weight) + \
        generator.token_projector.bias[None, :, None]
    projector = neck.projectors[0]
    hidden = torch.relu(prompts @ projector.fc1.weight.t())
    return prompts + hidden @ projector.fc2.weight.t()


@pytest.mark.parametrize('variant',
                         ['register-tokens', 'registers-without-class-token'])
@pytest.mark.parametrize('neck', ['vpt-deep', 'vapt'])
def test_prompts_follow_all_prefix_tokens(variant, neck):
    torch.manual_seed(0)
    neck_cfg = (dict(type='VPTNeck', num_tokens=3, deep=True)
                if neck == 'vpt-deep' else dict(type='VAPTNeck',
                                                num_tokens=3))
    cfg = timm_backbone(variant, no_embed_class=True)
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=cfg, neck=neck_cfg))
    _randomise(model.neck)
    model.eval()
    images = torch.rand(2, 3, 32, 32)

    if neck == 'vpt-deep':
        static = model.neck.prompts.prompts

        def prompts_for_block(index, tokens, c):
            return static[index].expand(tokens.shape[0], -1, -1)
    else:

        def prompts_for_block(index, tokens, c):
            return _vapt_prompts(model.neck, index, tokens, c)

    with torch.no_grad():
        got = model.extract_feat(images, stage='backbone')[0]
        expected = _reference_tokens(model.backbone.timm_model, images,
                                     prompts_for_block)
        bare = model.backbone(images)[0]
    assert got.shape == bare.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(got, bare)


MM_TINY_VIT = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128),
    img_size=32,
    patch_size=8)
HEAD = dict(type='LinearClsHead', num_classes=5, in_channels=64)


@pytest.mark.parametrize('neck', [
    dict(type='VPTNeck', num_tokens=3),
    dict(type='VPTNeck', num_tokens=3, deep=True),
    dict(type='VAPTNeck', num_tokens=3),
    dict(type='VAPTNeck', num_tokens=2, kernel_size=3, padding=1,
         vpt_depth=0),
], ids=['vpt-shallow', 'vpt-deep', 'vapt', 'vapt-all-adaptive'])
def test_timm_and_mmpretrain_vit_with_the_same_weights_agree(neck):
    torch.manual_seed(0)
    timm_model = MODELS.build(
        dict(type='PromptedClassifier', backbone=timm_backbone('plain'),
             neck=copy.deepcopy(neck), head=HEAD))
    mm_model = MODELS.build(
        dict(type='PromptedClassifier', backbone=MM_TINY_VIT,
             neck=copy.deepcopy(neck), head=HEAD))
    # timm -> mmpretrain names (strict: every backbone weight is set)
    mm_model.backbone.load_state_dict(
        convert_timm_vit(timm_model.backbone.timm_model.state_dict()),
        strict=True)
    _randomise(timm_model.neck)
    mm_model.neck.load_state_dict(timm_model.neck.state_dict())
    mm_model.head.load_state_dict(timm_model.head.state_dict())
    timm_model.eval()
    mm_model.eval()

    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        mm_logits = mm_model(images)
        # TIMMBackbone returns every token; the CLS token goes to the head
        timm_tokens = timm_model.extract_feat(images)[-1]
        timm_logits = timm_model.head((timm_tokens[:, 0], ))
        bare_logits = mm_model.head(mm_model.backbone(images))
    assert mm_logits.shape == (3, 5)
    torch.testing.assert_close(timm_logits, mm_logits, atol=1e-5, rtol=0)
    assert not torch.allclose(mm_logits, bare_logits, atol=1e-3)


def test_vapt_refuses_another_grid_with_dynamic_img_size():
    model = MODELS.build(
        dict(type='PromptedClassifier',
             backbone=timm_backbone('dynamic-img-size'),
             neck=dict(type='VAPTNeck', num_tokens=3))).eval()
    with pytest.raises(ValueError, match=r'4x4 patch grid.*6x6 grid'):
        model.extract_feat(torch.rand(1, 3, 48, 48))


def test_vpt_runs_at_another_size_with_dynamic_img_size():
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='PromptedClassifier',
             backbone=timm_backbone('dynamic-img-size'),
             neck=dict(type='VPTNeck', num_tokens=3, deep=True))).eval()
    images = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        got = model.extract_feat(images)[0]
        bare = model.backbone(images)[0]
    assert got.shape == bare.shape == (1, 1 + 36, 64)


def test_patch_dropout_that_breaks_the_grid_is_refused():
    model = MODELS.build(
        dict(type='PromptedClassifier',
             backbone=timm_backbone('plain', patch_drop_rate=0.5),
             neck=dict(type='VPTNeck', num_tokens=3),
             freeze_backbone=False))
    model.train()
    with pytest.raises(ValueError, match='patch dropout kept 8 of 16'):
        model.extract_feat(torch.rand(1, 3, 32, 32))
    # frozen, the backbone stays in eval mode: no patch dropout at all
    frozen = MODELS.build(
        dict(type='PromptedClassifier',
             backbone=timm_backbone('plain', patch_drop_rate=0.5),
             neck=dict(type='VPTNeck', num_tokens=3)))
    frozen.train()
    assert frozen.extract_feat(torch.rand(1, 3, 32, 32))[0].shape == (1, 17,
                                                                     64)


@pytest.mark.parametrize('backbone, names', [
    (dict(type='TIMMBackbone', model_name='resnet18'),
     ["'resnet18'", 'timm.models.resnet.ResNet']),
    (dict(type='TIMMBackbone', model_name='beit_base_patch16_224',
          img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4),
     ["'beit_base_patch16_224'", 'timm.models.beit.Beit']),
    (timm_backbone('plain', features_only=True, out_indices=(1, )),
     ["'vit_tiny_patch16_224'", 'FeatureGetterNet', 'features_only=False']),
], ids=['resnet', 'beit', 'features-only'])
def test_other_timm_models_are_refused_at_build_time(backbone, names):
    with pytest.raises(TypeError) as error:
        MODELS.build(
            dict(type='PromptedClassifier', backbone=backbone,
                 neck=dict(type='VPTNeck', num_tokens=2)))
    message = str(error.value)
    assert 'TIMMBackbone' in message
    assert 'timm.models.vision_transformer.VisionTransformer' in message
    assert 'timm.models.deit.VisionTransformerDistilled' in message
    for name in names:
        assert name in message
