"""tools/visualization/vis_cam.py on prompted tiny ViTs (VPT-deep, VAPT)."""
import copy
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_helpers import (TASK, TOOLS_DIR, write_tiny_config,
                                write_tiny_pretrained, write_tiny_vtab1k)

import vapt_mm  # noqa: F401
from vapt_mm.deployment import PromptedViTCAM, build_classifier
from vapt_mm.engine.hooks.trainable_checkpoint_hook import \
    drop_frozen_weights
from vapt_mm.utils.user_errors import run_tool

pytest.importorskip(
    'pytorch_grad_cam',
    reason='CAMs need the grad-cam package (pip install -e .[optional])')
cv2 = pytest.importorskip('cv2')

sys.path.insert(0, osp.join(TOOLS_DIR, 'visualization'))
import vis_cam  # noqa: E402

MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def write_run(tmp_path, neck):
    """(config, trainable-only checkpoint, model, two image paths)."""
    data_root = str(tmp_path / 'data')
    lists = write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(tmp_path / 'pretrained.pth'))
    config = write_tiny_config(
        str(tmp_path / f'{neck}.py'), data_root, pretrained, neck=neck)
    model = build_classifier(config)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.3)
    checkpoint = dict(state_dict=copy.deepcopy(model.state_dict()), meta={})
    drop_frozen_weights(model, checkpoint)
    weights = str(tmp_path / f'{neck}.pth')
    torch.save(checkpoint, weights)
    images = [
        osp.join(data_root, TASK, rel) for rel, _ in lists['test'][:2]
    ]
    return config, weights, model, images


def normalised(path):
    """The image as the model sees it, computed without mmpretrain."""
    rgb = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32)
    return torch.from_numpy((rgb - MEAN) / STD).permute(2, 0, 1)[None]


@pytest.mark.parametrize('neck', ['vpt-deep', 'vapt'])
def test_maps_and_picture(neck, tmp_path, capsys):
    config, weights, model, images = write_run(tmp_path, neck)
    out = tmp_path / 'cam.png'
    results = vis_cam.main([
        config, weights, *images, '--out',
        str(out), '--display-height', '64'
    ])
    printed = capsys.readouterr().out
    assert 'maps on backbone.layers.1.ln1 (4x4 patch grid)' in printed
    picture = cv2.imread(str(out))
    # one (image, map) pair per image, 64 px high, 32 px images -> 64 wide
    assert picture.shape == (64, 4 * 64, 3)
    reference = PromptedViTCAM(model)
    for index, (path, result) in enumerate(zip(images, results)):
        inputs = normalised(path)
        with torch.no_grad():
            predicted = int(model(inputs).argmax())
        assert result['predicted'] == result['category'] == predicted
        assert result['map'].shape == (32, 32)
        np.testing.assert_allclose(
            result['map'], reference(inputs)[0], rtol=0, atol=1e-5)
        # left of each pair: the image itself (BGR), enlarged 2x
        source = cv2.imread(path)
        left = picture[:, index * 128:index * 128 + 64]
        np.testing.assert_array_equal(left[::2, ::2], source)


def test_target_category_and_errors(tmp_path, capsys):
    config, weights, _, images = write_run(tmp_path, 'vapt')
    out = str(tmp_path / 'cam.png')
    results = vis_cam.main(
        [config, weights, images[0], '--out', out, '--target-category', '3'])
    assert results[0]['category'] == 3
    capsys.readouterr()

    argv = [config, weights, images[0], '--out', out, '--target-category',
            '10']
    assert run_tool(lambda: vis_cam.main(argv), 'vis_cam.py') == 1
    assert 'class 10 does not exist' in capsys.readouterr().err

    argv = [config, weights, str(tmp_path / 'no.png'), '--out', out]
    assert run_tool(lambda: vis_cam.main(argv), 'vis_cam.py') == 1
    assert 'vis_cam.py: error:' in capsys.readouterr().err
