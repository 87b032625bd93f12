"""tools/deployment/export.py: config + trainable-only checkpoint -> a
checked file; above the tolerance it exits with status 1 and writes
nothing."""
import copy
import importlib.util
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from test_train_helpers import (TOOLS_DIR, run_tool, write_tiny_config,
                                write_tiny_pretrained)

import vapt_mm  # noqa: F401
from vapt_mm.deployment import build_classifier
from vapt_mm.engine.hooks.trainable_checkpoint_hook import \
    drop_frozen_weights
from vapt_mm.utils.user_errors import run_tool as tool_status

sys.path.insert(0, osp.join(TOOLS_DIR, 'deployment'))
import export as export_tool  # noqa: E402

needs_onnx = pytest.mark.skipif(
    any(
        importlib.util.find_spec(name) is None
        for name in ('onnx', 'onnxruntime', 'onnxscript')),
    reason='ONNX export needs onnx, onnxruntime and onnxscript '
    '(pip install -e .[optional])')


@pytest.fixture
def trained_run(tmp_path):
    """(config, trainable-only checkpoint, the model it holds)."""
    pretrained = write_tiny_pretrained(str(tmp_path / 'pretrained.pth'))
    config = write_tiny_config(
        str(tmp_path / 'vapt_tiny.py'), str(tmp_path / 'data'), pretrained)
    model = build_classifier(config)  # backbone from the pretrained file
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.2)
    checkpoint = dict(state_dict=copy.deepcopy(model.state_dict()), meta={})
    drop_frozen_weights(model, checkpoint)
    weights = str(tmp_path / 'epoch_2.pth')
    torch.save(checkpoint, weights)
    return config, weights, model


@needs_onnx
def test_onnx_dynamic_batch_from_trainable_only_checkpoint(
        trained_run, tmp_path, capsys):
    import onnx
    import onnxruntime
    config, weights, model = trained_run
    out = str(tmp_path / 'vapt.onnx')
    result = export_tool.main([
        config, weights, '--format', 'onnx', '--dynamic-batch', '--out', out
    ])
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed
    assert 'input images (batch, 3, 32, 32) -> logits' in printed
    assert 'batch 1:' in printed and 'batch 3:' in printed
    assert result.max_difference <= 1e-4
    # the file computes what the trained model computes, at any batch
    session = onnxruntime.InferenceSession(out)
    for batch_size in (1, 3, 5):
        images = torch.randn(batch_size, 3, 32, 32)
        with torch.no_grad():
            expected = model(images, mode='tensor').numpy()
        got = session.run(None, {'images': images.numpy()})[0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    # the normalisation the input needs travels with the model
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta['mean'] == '[123.675, 116.28, 103.53]'
    assert meta['to_rgb'] == 'True' and meta['output'] == 'logits'


@needs_onnx
def test_above_tolerance_exits_1_and_writes_nothing(trained_run, tmp_path):
    config, weights, _ = trained_run
    out = tmp_path / 'vapt.onnx'
    # onnxruntime and PyTorch round differently (about 1e-8 here)
    proc = run_tool('deployment/export.py', [
        config, weights, '--format', 'onnx', '--dynamic-batch',
        '--tolerance', '1e-12', '--out', str(out)
    ], str(tmp_path))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'export.py: error: the onnx export differs from PyTorch by up ' \
        'to' in proc.stderr
    assert 'above the tolerance 1e-12' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not out.exists()


def test_wrong_checkpoint_is_a_short_error(trained_run, tmp_path, capsys):
    # in-process through run_tool, what the tool's __main__ calls
    config, _, _ = trained_run
    argv = [
        config, str(tmp_path / 'missing.pth'), '--format', 'torch_export',
        '--out', str(tmp_path / 'm.pt2')
    ]
    status = tool_status(lambda: export_tool.main(argv), 'export.py')
    err = capsys.readouterr().err
    assert status == 1
    assert 'export.py: error: Weights file' in err
    assert 'missing.pth does not exist' in err
    assert 'Traceback' not in err
    assert not (tmp_path / 'm.pt2').exists()
