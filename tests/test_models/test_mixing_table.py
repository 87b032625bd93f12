"""Every row of the backbone table in docs/mixing.md, exercised.

Supported rows: a tiny instance of the backbone takes a VAPT neck inside a
PromptedClassifier, runs forward and backward, and only the neck and the
head receive gradients. Refused rows: building the classifier fails with a
TypeError that names the backbone and the reason. A last test keeps the
table and these parametrizations in step.
"""
import copy
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from tiny_models import tiny_backbone, tiny_head

import vapt_mm  # noqa: F401

DOCS = osp.join(osp.dirname(__file__), '..', '..', 'docs', 'mixing.md')

TINY_TIMM_VIT = dict(
    type='TIMMBackbone',
    model_name='vit_tiny_patch16_224',
    img_size=32,
    patch_size=8,
    embed_dim=64,
    depth=2,
    num_heads=4,
    mlp_ratio=2.0)
TIMM_HEAD = dict(type='LinearClsHead', num_classes=5, in_channels=64)


def _timm(**kwargs):
    return dict(copy.deepcopy(TINY_TIMM_VIT), **kwargs)


# row id -> (backbone, head, image size, what the head reads). 'logits':
# the classifier's own loss works; 'cls-token' / 'avg-patches': the
# backbone returns every token (TIMMBackbone), the test pools them.
SUPPORTED = {
    'vit': (tiny_backbone('vit'), tiny_head('vit'), 32, 'logits'),
    'deit-distilled': (tiny_backbone('deit-distilled'),
                       tiny_head('deit-distilled'), 32, 'logits'),
    'deit3': (tiny_backbone('deit3'), tiny_head('deit3'), 32, 'logits'),
    'mae': (tiny_backbone('mae'), tiny_head('mae'), 32, 'logits'),
    'mocov3': (tiny_backbone('mocov3'), tiny_head('mocov3'), 32, 'logits'),
    'clip-pre-norm': (tiny_backbone('clip-pre-norm'),
                      tiny_head('clip-pre-norm'), 32, 'logits'),
    'dinov2-layer-scale': (tiny_backbone('dinov2-layer-scale'),
                           tiny_head('dinov2-layer-scale'), 28, 'logits'),
    'timm-vit': (_timm(), TIMM_HEAD, 32, 'cls-token'),
    'timm-vit-registers': (_timm(reg_tokens=2, no_embed_class=True),
                           TIMM_HEAD, 32, 'cls-token'),
    'timm-vit-no-class-token': (_timm(class_token=False, global_pool='avg'),
                                TIMM_HEAD, 32, 'avg-patches'),
    'timm-deit-distilled': (dict(
        type='TIMMBackbone',
        model_name='deit_tiny_distilled_patch16_224',
        img_size=32,
        patch_size=8,
        embed_dim=64,
        depth=2,
        num_heads=4), TIMM_HEAD, 32, 'logits'),
}

_SMALL = dict(embed_dims=32, num_layers=2, num_heads=2,
              feedforward_channels=64)
# row id -> (backbone, name in the message, reason in the message)
REFUSED = {
    'beit': (dict(type='BEiTViT', arch=dict(_SMALL), img_size=32,
                  patch_size=8), 'BEiTViT', 'relative position bias'),
    'eva02': (dict(type='ViTEVA02', arch=dict(_SMALL), img_size=32,
                   patch_size=8), 'ViTEVA02', 'rotary embeddings'),
    'swin': (dict(type='SwinTransformer', arch='tiny', img_size=32),
             'SwinTransformer', 'windowed attention'),
    'timm-resnet': (dict(type='TIMMBackbone', model_name='resnet18'),
                    'resnet18', 'does not depend on the token count'),
    'timm-beit': (_timm(model_name='beit_base_patch16_224'),
                  'beit_base_patch16_224',
                  'does not depend on the token count'),
    'timm-features-only': (_timm(features_only=True, out_indices=(1, )),
                           'vit_tiny_patch16_224', 'features_only=False'),
}


def _loss(model, images, labels, head_reads):
    if head_reads == 'logits':
        samples = [DataSample().set_gt_label(int(y)) for y in labels]
        return model.loss(images, samples)['loss']
    tokens = model.extract_feat(images)[-1]  # (B, prefix + N, d)
    if head_reads == 'cls-token':
        pooled = tokens[:, 0]
    else:
        prefix = model.backbone_adapter.num_prefix_tokens
        pooled = tokens[:, prefix:].mean(dim=1)
    return F.cross_entropy(model.head((pooled, )), labels)


@pytest.mark.parametrize('row', sorted(SUPPORTED))
def test_prompt_tuning_trains_only_neck_and_head(row):
    backbone, head, size, head_reads = SUPPORTED[row]
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=copy.deepcopy(backbone),
             neck=dict(type='VAPTNeck', num_tokens=3),
             head=copy.deepcopy(head)))
    model.train()
    assert not model.backbone.training
    trainable = {name.split('.')[0] for name in
                 model.trainable_parameter_names}
    assert trainable == {'neck', 'head'}

    images = torch.rand(2, 3, size, size)
    labels = torch.tensor([1, 3])
    loss = _loss(model, images, labels, head_reads)
    assert torch.isfinite(loss)
    loss.backward()

    for name, param in model.backbone.named_parameters():
        assert param.grad is None, f'backbone.{name} got a gradient'
    for name, param in model.named_parameters():
        if name.startswith(('neck.', 'head.')):
            assert param.grad is not None, f'{name} got no gradient'
    static = model.neck.static_prompts.prompts.grad
    assert torch.count_nonzero(static) > 0
    # the last adaptive block's token projector learns from the first step
    projector = model.neck.generators[-1].token_projector.weight.grad
    assert torch.count_nonzero(projector) > 0


@pytest.mark.parametrize('row', sorted(REFUSED))
def test_backbone_is_refused_with_the_reason(row):
    backbone, name, reason = REFUSED[row]
    with pytest.raises(TypeError) as error:
        MODELS.build(
            dict(type='PromptedClassifier', backbone=copy.deepcopy(backbone),
                 neck=dict(type='VAPTNeck', num_tokens=3)))
    message = str(error.value)
    assert repr(name) in message
    assert reason in message
    assert 'Supported' in message


def test_the_docs_table_names_exactly_these_rows():
    with open(DOCS, encoding='utf-8') as f:
        docs = f.read()
    named = set(
        re.findall(r'test_mixing_table\.py::(test_\w+)\[([\w.-]+)\]', docs))
    expected = {('test_prompt_tuning_trains_only_neck_and_head', row)
                for row in SUPPORTED}
    expected |= {('test_backbone_is_refused_with_the_reason', row)
                 for row in REFUSED}
    assert named == expected, (
        f'docs/mixing.md names {sorted(named - expected)} that are not '
        f'tests and misses {sorted(expected - named)}')
