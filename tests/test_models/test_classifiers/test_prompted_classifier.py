import re

import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from tiny_models import (NECKS, TINY_BACKBONES, image_size, tiny_backbone,
                         tiny_classifier, tiny_head)

import vapt_mm  # noqa: F401


def _loss(model, family, batch=4):
    size = image_size(family)
    images = torch.rand(batch, 3, size, size)
    samples = [DataSample().set_gt_label(i % 5) for i in range(batch)]
    losses = model(images, samples, mode='loss')
    return sum(v for k, v in losses.items() if 'loss' in k)


# At initialisation VAPT passes no gradient to most of its own parameters,
# by the method's math rather than by accident. The token projector's weight
# is zero, so nothing before it (LayerNorm, convolution kernel) reaches the
# prompts; the raw prompts are zero, so ReLU'(0) = 0 cuts the feature
# projector's branch (fc1, fc2); and the token projector's bias, one value
# per prompt shared by all d channels, is a constant shift over d that the
# block's LayerNorm removes. Those gradients are zero up to float noise
# (exactly 0.0 for some seeds). Only the token projector's weight (and the
# static prompts) get a gradient at initialisation.
ZERO_GRAD_AT_INIT = re.compile(
    r'(generators\.\d+\.(norm\.\w+|kernel|token_projector\.bias)'
    r'|projectors\.\d+\.fc[12]\.weight)$')


def _grad_norms(part: nn.Module) -> dict:
    return {name: float(param.grad.abs().sum())
            for name, param in part.named_parameters()}


@pytest.mark.parametrize('neck', sorted(NECKS))
@pytest.mark.parametrize('family', sorted(TINY_BACKBONES))
def test_gradients_reach_only_neck_and_head(family, neck):
    torch.manual_seed(0)
    model = MODELS.build(tiny_classifier(family, neck))
    model.train()
    _loss(model, family).backward()
    for name, param in model.backbone.named_parameters():
        assert not param.requires_grad, name
        assert param.grad is None, name
    for part in (model.neck, model.head):
        for name, param in part.named_parameters():
            assert param.requires_grad, name
            assert param.grad is not None, name
    # Scales differ by orders of magnitude between families (layer scale
    # 1e-5 shrinks every gradient), so the bounds are relative.
    first = _grad_norms(model.neck)
    learning = [n for n in first if not ZERO_GRAD_AT_INIT.search(n)]
    floor = min(first[n] for n in learning)
    assert floor > 0, first
    for name, norm in first.items():
        if name not in learning:
            assert norm < 1e-4 * floor, (name, norm, floor)
    # Once the token projectors are no longer zero (as after training),
    # every prompt parameter, the ones above included, gets a gradient.
    for name, param in model.neck.named_parameters():
        if name.endswith('token_projector.weight'):
            nn.init.normal_(param.data, std=1.0)
    model.zero_grad()
    _loss(model, family).backward()
    trained = _grad_norms(model.neck)
    for name, norm in trained.items():
        assert norm > 1e-4 * max(trained.values()), (name, norm)


@pytest.mark.parametrize('neck', sorted(NECKS))
def test_train_mode_keeps_the_frozen_backbone_in_eval(neck):
    model = MODELS.build(tiny_classifier('vit', neck))
    model.train()
    assert model.training
    assert all(not m.training for m in model.backbone.modules())
    assert all(m.training for m in model.neck.modules())
    assert all(m.training for m in model.head.modules())
    # Dropout and drop-path of the backbone are off: a frozen backbone
    # with no prompts is deterministic in train mode.
    probe = MODELS.build(tiny_classifier('vit', None))
    probe.train()
    images = torch.rand(2, 3, 32, 32)
    feats = [probe.extract_feat(images)[-1] for _ in range(2)]
    assert torch.equal(feats[0], feats[1])
    model.eval()
    assert all(not m.training for m in model.modules())


def test_without_freezing_the_backbone_trains_and_follows_the_mode():
    model = MODELS.build(
        tiny_classifier('vit', 'vpt-deep', freeze_backbone=False))
    model.train()
    assert all(p.requires_grad for p in model.parameters())
    assert model.backbone.training


def test_frozen_exclude_keeps_matching_backbone_parameters_trainable():
    model = MODELS.build(
        tiny_classifier('vit', 'vapt', frozen_exclude=[r'^ln1\.']))
    trainable = [n for n, p in model.backbone.named_parameters()
                 if p.requires_grad]
    assert trainable == ['ln1.weight', 'ln1.bias']
    message = "patterns ['^no_such'] match no parameter of VisionTransformer"
    with pytest.raises(ValueError, match=re.escape(message)):
        MODELS.build(tiny_classifier('vit', 'vapt',
                                     frozen_exclude=['^no_such']))


def test_state_dict_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(tiny_classifier('deit-distilled', 'vapt'))
    with torch.no_grad():
        for p in model.neck.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path / 'model.pth'
    torch.save(model.state_dict(), path)
    torch.manual_seed(1)
    fresh = MODELS.build(tiny_classifier('deit-distilled', 'vapt'))
    fresh.load_state_dict(torch.load(path, weights_only=True), strict=True)
    model.eval()
    fresh.eval()
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(model(images), fresh(images))
    assert {k for k in model.state_dict() if k.startswith('neck.')}


def test_linear_probe_is_backbone_then_head():
    torch.manual_seed(0)
    model = MODELS.build(tiny_classifier('mae', None))
    model.eval()
    images = torch.rand(2, 3, 32, 32)
    cls = model.backbone(images, mask=None)[-1]
    expected = model.head.fc(cls)
    assert torch.equal(model(images), expected)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        'head.fc.weight', 'head.fc.bias']


def test_extract_feat_stages():
    model = MODELS.build(tiny_classifier('vit', 'vapt'))
    model.eval()
    images = torch.rand(2, 3, 32, 32)
    backbone = model.extract_feat(images, stage='backbone')
    assert isinstance(backbone, tuple) and backbone[-1].shape == (2, 32)
    assert torch.equal(model.extract_feat(images, stage='neck')[-1],
                       backbone[-1])
    assert model.extract_feat(images, stage='pre_logits').shape == (2, 32)
    with pytest.raises(ValueError, match='Invalid output stage'):
        model.extract_feat(images, stage='head')


def test_neck_geometry_given_in_the_config_must_fit_the_backbone():
    with pytest.raises(ValueError, match=r'embed_dims=48 \(backbone: 32\)'):
        MODELS.build(
            dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
                 neck=dict(type='VPTNeck', num_tokens=2, embed_dims=48),
                 head=tiny_head('vit')))


def test_a_plain_neck_is_refused():
    with pytest.raises(TypeError, match='needs a prompt neck'):
        MODELS.build(
            dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
                 neck=dict(type='GlobalAveragePooling'),
                 head=tiny_head('vit')))


def test_predict_mode_returns_data_samples():
    model = MODELS.build(tiny_classifier('vit', 'vpt-shallow'))
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32), mode='predict')
    assert len(out) == 2 and out[0].pred_score.shape == (5, )


def test_backbone_module_can_be_passed_in():
    backbone = MODELS.build(tiny_backbone('vit'))
    assert isinstance(backbone, nn.Module)
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=backbone,
             neck=dict(type='VPTNeck', num_tokens=2), head=tiny_head('vit')))
    assert model.backbone is backbone
    assert not any(p.requires_grad for p in backbone.parameters())


def _with_init(init_cfg):
    cfg = tiny_classifier('vit', 'vapt')
    cfg['backbone'] = tiny_backbone('vit', init_cfg=init_cfg)
    return cfg


def test_init_weights_checks_and_loads_the_pretrained_backbone(tmp_path):
    source = MODELS.build(tiny_backbone('vit'))
    path = tmp_path / 'vit.pth'
    torch.save(source.state_dict(), path)
    pretrained = dict(type='Pretrained', checkpoint=str(path))
    model = MODELS.build(_with_init(pretrained))
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert not any(p.requires_grad for p in model.backbone.parameters())

    missing = dict(pretrained, checkpoint=str(tmp_path / 'absent.pth'))
    model = MODELS.build(_with_init(missing))
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        model.init_weights()

    wrong = MODELS.build(tiny_backbone('vit', arch=dict(
        embed_dims=48, num_layers=3, num_heads=2, feedforward_channels=64)))
    torch.save(wrong.state_dict(), tmp_path / 'wrong.pth')
    bad = dict(pretrained, checkpoint=str(tmp_path / 'wrong.pth'))
    model = MODELS.build(_with_init(bad))
    with pytest.raises(ValueError, match='layers.0.ln1.weight'):
        model.init_weights()


def test_mae_backbone_keeps_its_pretrained_weights(tmp_path):
    # MAEViT.init_weights re-initialises cls_token, pos_embed and the patch
    # projection after loading; the classifier must end with the file's
    # weights.
    source = MODELS.build(tiny_backbone('mae'))
    with torch.no_grad():
        source.cls_token.fill_(0.25)
        source.patch_embed.projection.weight.fill_(0.01)
    path = tmp_path / 'mae.pth'
    torch.save(source.state_dict(), path)
    cfg = tiny_classifier('mae', 'vapt')
    cfg['backbone'] = tiny_backbone(
        'mae', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model = MODELS.build(cfg)
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key


def test_a_classifier_init_cfg_does_not_clobber_the_prompt_init():
    # DeiT-style configs put TruncNormal on every Linear of the classifier.
    cfg = tiny_classifier('vit', 'vapt')
    cfg['init_cfg'] = [dict(type='TruncNormal', layer='Linear', std=0.02)]
    model = MODELS.build(cfg)
    model.init_weights()
    for generator in model.neck.generators:
        assert torch.count_nonzero(generator.token_projector.weight) == 0
        assert torch.count_nonzero(generator.token_projector.bias) == 0
    bound = model.neck.static_prompts.bound
    assert model.neck.static_prompts.prompts.abs().max() <= bound


TINY_TIMM_VIT = dict(type='TIMMBackbone', model_name='vit_tiny_patch16_224',
                     pretrained=False, img_size=32, patch_size=8,
                     embed_dim=32, depth=2, num_heads=2, reg_tokens=2)


def _timm_classifier(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    neck = dict(type='VAPTNeck', num_tokens=3, **kwargs.pop('neck', {}))
    return MODELS.build(
        dict(type='PromptedClassifier', backbone=TINY_TIMM_VIT, neck=neck,
             head=dict(type='LinearClsHead', num_classes=4, in_channels=32),
             **kwargs)).eval()


@pytest.mark.parametrize('out_pool', ['cls', 'avg'])
def test_timm_vit_token_outputs_are_pooled_for_the_head(out_pool):
    unpooled = _timm_classifier()
    model = _timm_classifier(adapter_cfg=dict(out_pool=out_pool))
    images = torch.rand(2, 3, 32, 32)
    tokens = unpooled.extract_feat(images, stage='backbone')[-1]
    assert tokens.shape == (2, 1 + 2 + 16, 32)  # CLS, 2 registers, patches
    pooled = model.extract_feat(images, stage='neck')[-1]
    expected = tokens[:, 0] if out_pool == 'cls' else tokens[:, 3:].mean(1)
    assert torch.equal(pooled, expected)
    assert model(images).shape == (2, 4)


def test_neck_out_pool_still_works_with_a_deprecation_message():
    new = _timm_classifier(adapter_cfg=dict(out_pool='avg'))
    with pytest.deprecated_call(match=r"adapter_cfg=dict\(out_pool='avg'\)"):
        old = _timm_classifier(neck=dict(out_pool='avg'))
    assert old.state_dict().keys() == new.state_dict().keys()
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(old(images), new(images))
    with pytest.raises(ValueError, match='disagree'):
        _timm_classifier(neck=dict(out_pool='avg'),
                         adapter_cfg=dict(out_pool='cls'))


def test_out_pool_refuses_backbones_whose_outputs_are_not_token_sequences():
    cfg = tiny_classifier('vit', 'vpt-deep', adapter_cfg=dict(out_pool='cls'))
    with pytest.raises(ValueError, match=r"VisionTransformer adapter takes "
                       r"no options.*out_pool"):
        MODELS.build(cfg)
    distilled = dict(TINY_TIMM_VIT,
                     model_name='deit_tiny_distilled_patch16_224')
    distilled.pop('reg_tokens')
    with pytest.raises(ValueError, match='already returns pooled features'):
        MODELS.build(
            dict(type='PromptedClassifier', backbone=distilled,
                 neck=dict(type='VPTNeck', num_tokens=2),
                 adapter_cfg=dict(out_pool='cls'),
                 head=dict(type='LinearClsHead', num_classes=4,
                           in_channels=32)))
