"""Grad-CAM on prompted ViTs: the helper's maps equal Grad-CAM computed by
hand on the model's default fast path."""
import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from tiny_models import (image_size, tiny_backbone, tiny_classifier,
                         tiny_head)

import vapt_mm  # noqa: F401
from vapt_mm.deployment import (PromptedViTCAM, TokenGridReshape,
                                default_cam_target_layer)
from vapt_mm.utils.user_errors import ConfigError

pytest.importorskip(
    'pytorch_grad_cam',
    reason='CAMs need the grad-cam package (pip install -e .[optional])')
cv2 = pytest.importorskip('cv2')


def trained_classifier(backbone, neck, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(tiny_classifier(backbone, neck))
    model.init_weights()
    with torch.no_grad():
        if model.neck is not None:
            for param in model.neck.parameters():
                param.add_(torch.randn_like(param) * 0.2)
        for param in model.head.parameters():
            param.normal_(0, 0.5)
    return model.eval()


def scale_like_grad_cam(cam, size):
    """Min-max to [0, 1], bilinear resize, as pytorch_grad_cam presents a
    map (per image, then once more after averaging the one layer)."""
    out = []
    for image in cam:
        image = image - image.min()
        image = image / (1e-7 + image.max())
        image = cv2.resize(np.float32(image), size[::-1])
        image = np.maximum(image, 0)
        image = image - image.min()
        out.append(image / (1e-7 + image.max()))
    return np.float32(out)


def manual_grad_cam(model, images, layer_name):
    """Grad-CAM by hand on the default (fast) path.

    On the fast path the last block's first norm runs on the prompts and
    then on the prefix and patch tokens; the second call is the one a CAM
    needs. Weights: the class score's gradient averaged over the patches.
    """
    layer = dict(model.named_modules())[layer_name]
    prefix = model.backbone_adapter.num_prefix_tokens
    grid = model.backbone_adapter.patch_grid
    outputs = []
    handle = layer.register_forward_hook(lambda m, i, o: outputs.append(o))
    try:
        logits = model(images.clone().requires_grad_(True))
    finally:
        handle.remove()
    assert len(outputs) == 2, 'expected the fast path (two norm calls)'
    tokens = [o for o in outputs if o.shape[1] == prefix + grid[0] * grid[1]]
    assert len(tokens) == 1
    categories = logits.argmax(dim=1)
    score = logits.gather(1, categories[:, None]).sum()
    grads, = torch.autograd.grad(score, tokens[0])
    acts = tokens[0][:, prefix:].detach()
    weights = grads[:, prefix:].mean(dim=1)  # (B, d)
    cam = torch.relu((acts * weights[:, None, :]).sum(-1))
    cam = cam.reshape(len(images), *grid).numpy()
    return scale_like_grad_cam(cam, tuple(images.shape[-2:])), categories


@pytest.mark.parametrize('backbone, neck', [
    ('vit', 'vpt-deep'),
    ('vit', 'vapt'),
    ('vit', 'vpt-shallow'),
    ('deit-distilled', 'vapt'),  # two prefix tokens
])
def test_grad_cam_matches_manual_reference(backbone, neck):
    model = trained_classifier(backbone, neck)
    size = image_size(backbone)
    images = torch.randn(3, 3, size, size,
                         generator=torch.Generator().manual_seed(1))
    layer = default_cam_target_layer(model)
    assert layer == 'backbone.layers.2.ln1'  # last block's first norm
    expected, categories = manual_grad_cam(model, images, layer)
    assert expected.max() > 0  # a map with something in it

    cam = PromptedViTCAM(model)
    maps = cam(images)
    assert cam.grid == model.backbone_adapter.patch_grid == (4, 4)
    assert maps.shape == (3, size, size)
    np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-5)
    # explaining the predicted class explicitly gives the same maps
    np.testing.assert_allclose(
        cam(images, categories.tolist()), maps, rtol=0, atol=1e-6)
    # the neck is back on its fast path (None: automatic)
    assert model.neck.fast_path is None


def test_other_class_gives_other_map():
    model = trained_classifier('vit', 'vapt')
    images = torch.randn(1, 3, 32, 32,
                         generator=torch.Generator().manual_seed(2))
    cam = PromptedViTCAM(model)
    assert not np.allclose(cam(images, [0]), cam(images, [1]), atol=1e-3)


def test_linear_probe_without_prompts():
    # Nothing before the target layer trains; the maps still come out.
    model = trained_classifier('vit', None)
    maps = PromptedViTCAM(model)(torch.randn(2, 3, 32, 32))
    assert maps.shape == (2, 32, 32) and maps.max() > 0


def test_token_grid_reshape_drops_prefix_and_prompts():
    prefix, prompts, grid = 2, 3, (2, 3)
    reshape = TokenGridReshape(prefix, prompts, grid)
    length = prefix + prompts + 6
    tokens = torch.arange(length, dtype=torch.float32)
    tokens = tokens.view(1, length, 1).expand(2, length, 4)
    maps = reshape(tokens)
    assert maps.shape == (2, 4, 2, 3)
    # raster order: row-major over the grid, after prefix and prompts
    assert maps[0, 0].tolist() == [[5., 6., 7.], [8., 9., 10.]]
    # the same sequence without prompts
    without = torch.cat((tokens[:, :prefix], tokens[:, prefix + prompts:]), 1)
    assert torch.equal(reshape(without), maps)
    with pytest.raises(ConfigError, match='gives 10 tokens'):
        reshape(tokens[:, 1:])
    with pytest.raises(ConfigError, match='not token activations'):
        reshape(torch.zeros(2, 4, 2, 3))


def test_layer_running_twice_per_forward_is_refused():
    # DeiT3's ln1 normalises both the attention and the FFN input: two
    # calls per forward, each with the whole sequence.
    model = trained_classifier('deit3', 'vpt-deep')
    cam = PromptedViTCAM(model, target_layer='backbone.layers.2.ln1')
    with pytest.raises(ConfigError, match='runs more than once'):
        cam(torch.randn(1, 3, 32, 32))
    # the default for DeiT3 is the previous block's output, run once
    assert default_cam_target_layer(model) == 'backbone.layers.1'
    maps = PromptedViTCAM(model)(torch.randn(1, 3, 32, 32))
    assert maps.shape == (1, 32, 32)


def test_bad_target_layer_and_method_are_refused():
    model = trained_classifier('vit', 'vapt')
    with pytest.raises(ConfigError, match='no module'):
        PromptedViTCAM(model, target_layer='backbone.layers.99.ln1')
    with pytest.raises(ConfigError, match='unknown CAM method'):
        PromptedViTCAM(model, method='magic')
    # the shared VAPT projector sees prompts only
    cam = PromptedViTCAM(model, target_layer='neck.projectors.0')
    with pytest.raises(ConfigError, match='tokens, expected'):
        cam(torch.randn(1, 3, 32, 32))
    assert model.neck.fast_path is None  # restored after the error
    plain = MODELS.build(
        dict(type='ImageClassifier', backbone=tiny_backbone('vit'),
             head=tiny_head('vit')))
    with pytest.raises(ConfigError, match='not a PromptedClassifier'):
        PromptedViTCAM(plain, target_layer='backbone.layers.2.ln1')
