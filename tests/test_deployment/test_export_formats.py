"""Exported files (ONNX, torch.export, TorchScript) compute the model's logits.

Every neck is exported with a dynamic batch, and the written file is loaded
here independently of the export's own check and compared with the PyTorch
model at batch sizes 1 and 3 (the export's example has batch 2).
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from tiny_models import tiny_classifier

import vapt_mm  # noqa: F401
from vapt_mm.deployment import (ExportMismatchError, ImageClassifierLogits,
                                check_exported, export_model)
from vapt_mm.utils.user_errors import ConfigError

TOLERANCE = 1e-4
NECKS = ('vpt-shallow', 'vpt-deep', 'vapt')

needs_onnx = pytest.mark.skipif(
    any(
        importlib.util.find_spec(name) is None
        for name in ('onnx', 'onnxruntime', 'onnxscript')),
    reason='ONNX export needs onnx, onnxruntime and onnxscript '
    '(pip install -e .[optional])')


def trained_classifier(neck: str, seed: int = 0) -> torch.nn.Module:
    """A tiny classifier whose prompt modules are all non-zero.

    VAPT's token-wise projectors start at zero (adaptive prompts exactly
    0); random values make every part of the prompt path count.
    """
    torch.manual_seed(seed)
    model = MODELS.build(tiny_classifier('vit', neck))
    model.init_weights()
    with torch.no_grad():
        for param in model.neck.parameters():
            param.add_(torch.randn_like(param) * 0.2)
        model.head.fc.weight.normal_(0, 0.5)
    return model.eval()


def reference_logits(model, images):
    with torch.no_grad():
        return model(images, mode='tensor').numpy()


def check_images(batch_size, seed=123):
    generator = torch.Generator().manual_seed(seed + batch_size)
    return torch.randn(batch_size, 3, 32, 32, generator=generator)


def run_file(path, fmt):
    """Load an exported file without vapt_mm's loader."""
    if fmt == 'onnx':
        import onnxruntime
        session = onnxruntime.InferenceSession(
            path, providers=['CPUExecutionProvider'])
        return lambda x: session.run(None, {'images': x.numpy()})[0]
    if fmt == 'torch_export':
        module = torch.export.load(path).module()
    else:
        module = torch.jit.load(path)
    return lambda x: module(x).detach().numpy()


def assert_matches_pytorch(model, path, fmt):
    run = run_file(path, fmt)
    for batch_size in (1, 3):
        images = check_images(batch_size)
        got = run(images)
        expected = reference_logits(model, images)
        assert got.shape == (batch_size, 5)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


@needs_onnx
@pytest.mark.parametrize('neck', NECKS)
def test_onnx_dynamic_batch_matches_pytorch(neck, tmp_path):
    model = trained_classifier(neck)
    path = str(tmp_path / f'{neck}.onnx')
    result = export_model(model, path, 'onnx', dynamic_batch=True)
    assert sorted(result.differences) == [1, 3]
    assert result.max_difference <= TOLERANCE
    assert result.input_shape == (None, 3, 32, 32)
    assert_matches_pytorch(model, path, 'onnx')


@pytest.mark.parametrize('neck', NECKS)
def test_torch_export_dynamic_batch_matches_pytorch(neck, tmp_path):
    model = trained_classifier(neck)
    path = str(tmp_path / f'{neck}.pt2')
    result = export_model(model, path, 'torch_export', dynamic_batch=True)
    assert sorted(result.differences) == [1, 3]
    assert result.max_difference <= TOLERANCE
    assert_matches_pytorch(model, path, 'torch_export')


@needs_onnx
def test_torchscript_onnx_exporter_takes_vapt_with_dynamic_batch(tmp_path):
    # The channel-wise convolution's kernel once took its width from the
    # input's shape, which this exporter cannot convert with a dynamic batch.
    model = trained_classifier('vapt')
    path = str(tmp_path / 'vapt.onnx')
    export_model(
        model, path, 'onnx', dynamic_batch=True, onnx_exporter='torchscript')
    assert_matches_pytorch(model, path, 'onnx')


@pytest.mark.parametrize('neck', ('vpt-deep', 'vapt'))
def test_jit_trace_passes_its_check_and_matches(neck, tmp_path):
    # check_trace re-traces at batch 1 and 3; it used to fail because the
    # prompt key/value cache changed the traced graph.
    model = trained_classifier(neck)
    path = str(tmp_path / f'{neck}.ts')
    export_model(model, path, 'torchscript', dynamic_batch=True)
    assert_matches_pytorch(model, path, 'torchscript')


def test_fixed_batch_export_takes_that_batch(tmp_path):
    model = trained_classifier('vpt-deep')
    path = str(tmp_path / 'fixed.pt2')
    result = export_model(model, path, 'torch_export', batch_size=4)
    assert result.input_shape == (4, 3, 32, 32)
    assert list(result.differences) == [4]
    images = check_images(4)
    got = torch.export.load(path).module()(images).detach().numpy()
    np.testing.assert_allclose(
        got, reference_logits(model, images), rtol=0, atol=TOLERANCE)


def test_mismatch_is_refused_and_nothing_written(tmp_path):
    exported = trained_classifier('vapt', seed=0)
    other = trained_classifier('vapt', seed=1)  # other weights
    path = str(tmp_path / 'vapt.pt2')
    export_model(exported, path, 'torch_export', dynamic_batch=True)
    with pytest.raises(ExportMismatchError, match='above the tolerance'):
        check_exported(path, 'torch_export', ImageClassifierLogits(other),
                       [check_images(1)], TOLERANCE)


def test_export_above_tolerance_leaves_no_file(tmp_path, monkeypatch):
    import vapt_mm.deployment.consistency as consistency
    real = consistency.load_exported

    def off_by_a_little(source, fmt):
        run = real(source, fmt)
        return lambda images: run(images) + 1e-3

    monkeypatch.setattr(consistency, 'load_exported', off_by_a_little)
    path = tmp_path / 'vapt.pt2'
    with pytest.raises(ExportMismatchError) as error:
        export_model(trained_classifier('vapt'), str(path), 'torch_export',
                     dynamic_batch=True)
    assert 'the file was not written' in str(error.value)
    assert str(path) in str(error.value)
    assert not path.exists()
    assert not list(tmp_path.iterdir())  # no temporary file either


def test_exported_graph_stays_in_eval_mode():
    # Exporters restore the mode a module had; a graph left in train mode
    # would run prompt dropout in the reference outputs.
    model = trained_classifier('vpt-deep')
    graph = ImageClassifierLogits(model)
    graph.train()
    assert not any(m.training for m in graph.modules())


def test_classifier_without_head_is_refused():
    model = MODELS.build(tiny_classifier('vit', 'vapt', head=None))
    with pytest.raises(ConfigError, match='no head'):
        ImageClassifierLogits(model)


@pytest.mark.parametrize('kwargs, match', [
    (dict(fmt='tflite'), 'unknown export format'),
    (dict(fmt='onnx', onnx_exporter='tf2onnx'), 'unknown ONNX exporter'),
    (dict(fmt='onnx', batch_size=0), 'batch size'),
    (dict(fmt='onnx', tolerance=-1.0), 'tolerance'),
])
def test_bad_arguments_are_refused(kwargs, match, tmp_path):
    path = tmp_path / 'out'
    with pytest.raises(ConfigError, match=match):
        export_model(trained_classifier('vpt-deep'), str(path), **kwargs)
    assert not osp.exists(path)
