import pytest
import torch
from mmpretrain.registry import MODELS
from tiny_models import NECKS, TINY_BACKBONES, image_size, tiny_backbone

import vapt_mm  # noqa: F401
from vapt_mm.models.backbones import (build_backbone_adapter,
                                      supported_backbone_names)
from vapt_mm.models.necks import run_backbone

OUT_TYPES = ['cls_token', 'featmap', 'avg_featmap', 'raw']


def _skip_broken_upstream(family, out_type):
    if family == 'deit3' and out_type == 'avg_featmap':
        pytest.skip("mmpretrain 1.2.0's DeiT3 builds no ln2, so its own "
                    "forward fails with out_type='avg_featmap'")


def _bare_forward(backbone, x):
    if type(backbone).__name__ == 'MAEViT':
        return backbone(x, mask=None)  # the plain, unmasked forward
    return backbone(x)


def _flatten(outputs):
    for out in outputs:
        if isinstance(out, (tuple, list)):
            yield from _flatten(out)
        else:
            yield out


@pytest.mark.parametrize('out_type', OUT_TYPES)
@pytest.mark.parametrize('family', sorted(TINY_BACKBONES))
def test_adapter_without_prompts_is_the_backbone_forward(family, out_type):
    _skip_broken_upstream(family, out_type)
    torch.manual_seed(0)
    backbone = MODELS.build(
        tiny_backbone(family, out_type=out_type, out_indices=[0, 2]))
    backbone.eval()  # mmpretrain backbones' train() returns None
    x = torch.rand(2, 3, image_size(family), image_size(family))
    expected = list(_flatten(_bare_forward(backbone, x)))
    got = list(_flatten(run_backbone(build_backbone_adapter(backbone), x)))
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        assert torch.equal(g, e)


@pytest.mark.parametrize('neck', sorted(NECKS))
@pytest.mark.parametrize('out_type', OUT_TYPES)
@pytest.mark.parametrize('family', sorted(TINY_BACKBONES))
def test_prompted_outputs_keep_the_bare_shapes(family, out_type, neck):
    _skip_broken_upstream(family, out_type)
    backbone_cfg = tiny_backbone(family, out_type=out_type,
                                 out_indices=[1, -1])
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=backbone_cfg,
             neck=dict(NECKS[neck])))
    model.eval()
    x = torch.rand(2, 3, image_size(family), image_size(family))
    bare = list(_flatten(_bare_forward(model.backbone, x)))
    prompted = list(_flatten(model.extract_feat(x, stage='backbone')))
    assert [t.shape for t in prompted] == [t.shape for t in bare]
    # Prompts change the features (they are not silently ignored).
    assert not torch.allclose(prompted[-1], bare[-1])


def test_geometry_of_vit_b16():
    vit = MODELS.build(dict(type='VisionTransformer', arch='b'))
    geometry = build_backbone_adapter(vit).geometry()
    assert geometry == dict(
        embed_dims=768, num_layers=12, patch_size=(16, 16),
        patch_grid=(14, 14), num_prefix_tokens=1)


def test_geometry_of_non_square_images_and_prefix_tokens():
    vit = MODELS.build(tiny_backbone('vit', img_size=(32, 48)))
    assert build_backbone_adapter(vit).patch_grid == (4, 6)
    distilled = MODELS.build(tiny_backbone('deit-distilled'))
    assert build_backbone_adapter(distilled).num_prefix_tokens == 2
    no_cls = MODELS.build(
        tiny_backbone('vit', with_cls_token=False, out_type='featmap'))
    assert build_backbone_adapter(no_cls).num_prefix_tokens == 0


@pytest.mark.parametrize('backbone_cfg, name', [
    (dict(type='BEiTViT', arch=dict(TINY_BACKBONES['vit']['arch']),
          img_size=32, patch_size=8), 'BEiTViT'),
    (dict(type='SwinTransformer', arch='tiny', img_size=32), 'SwinTransformer'),
    (dict(type='ResNet', depth=18), 'ResNet'),
])
def test_unsupported_backbones_are_refused_by_name(backbone_cfg, name):
    backbone = MODELS.build(backbone_cfg)
    with pytest.raises(TypeError) as error:
        build_backbone_adapter(backbone)
    message = str(error.value)
    assert repr(name) in message
    for supported in supported_backbone_names():
        assert supported in message
    with pytest.raises(TypeError, match=name):
        MODELS.build(dict(type='PromptedClassifier', backbone=backbone_cfg,
                          neck=dict(type='VPTNeck', num_tokens=2)))


def test_supported_backbones_are_the_documented_families():
    assert set(supported_backbone_names()) == {
        'VisionTransformer', 'DistilledVisionTransformer', 'DeiT3',
        'MAEViT', 'MoCoV3ViT', 'TIMMBackbone'
    }
