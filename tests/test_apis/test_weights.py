"""One call loads every kind of weights file, and prompt files load through
every path that loads a checkpoint (mmengine's load_checkpoint, get_model,
ImageClassificationInferencer)."""
import numpy as np
import pytest
import torch
from apis_test_utils import fresh_model, model_cfg, trained_model
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.apis import ImageClassificationInferencer, get_model
from PIL import Image

from vapt_mm.apis import init_prompted_model, load_weights, save_prompt_file
from vapt_mm.engine.hooks.trainable_checkpoint_hook import drop_frozen_weights
from vapt_mm.utils.user_errors import CheckpointError, MissingFileError

CLASSES = ['cat', 'dog', 'bird', 'fish', 'frog']


@pytest.fixture
def files(backbones, tmp_path):
    """A trained tiny VAPT model and its three weights files."""
    cfg = model_cfg(backbones['a'], 'vapt')
    model = trained_model(cfg)
    meta = dict(dataset_meta=dict(classes=tuple(CLASSES)))
    full = str(tmp_path / 'full.pth')
    torch.save(dict(meta=dict(meta), state_dict=model.state_dict()), full)
    checkpoint = dict(meta=dict(meta), state_dict=model.state_dict())
    drop_frozen_weights(model, checkpoint)
    trainable_only = str(tmp_path / 'trainable_only.pth')
    torch.save(checkpoint, trainable_only)
    prompts = str(tmp_path / 'prompts.safetensors')
    save_prompt_file(model, prompts, classes=CLASSES)
    return dict(
        cfg=cfg,
        model=model,
        full=full,
        trainable_only=trainable_only,
        prompts=prompts)


def _logits(model, images):
    with torch.no_grad():
        return model.eval()(images, mode='tensor')


@pytest.mark.parametrize('kind', ['full', 'trainable_only', 'prompts'])
def test_load_weights_loads_every_kind(files, images, kind):
    model = fresh_model(files['cfg'])
    checkpoint = load_weights(model, files[kind])
    assert torch.equal(_logits(model, images), _logits(files['model'],
                                                       images))
    assert model._dataset_meta == dict(classes=CLASSES)
    assert checkpoint['meta']['dataset_meta']['classes'] in (
        CLASSES, tuple(CLASSES))


def test_mmengine_load_checkpoint_reads_prompt_files(files, images):
    model = fresh_model(files['cfg'])
    load_checkpoint(model, files['prompts'], map_location='cpu')
    assert torch.equal(_logits(model, images), _logits(files['model'],
                                                       images))


def test_load_weights_names_the_missing_file(files, tmp_path):
    with pytest.raises(MissingFileError, match='nope.safetensors'):
        load_weights(fresh_model(files['cfg']),
                     str(tmp_path / 'nope.safetensors'))


def test_damaged_checkpoints_are_still_named(files, tmp_path):
    """Non-prompt files still go through the loader that names damage."""
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match='unreadable: empty'):
        load_weights(fresh_model(files['cfg']), str(empty))


def _config_file(cfg, tmp_path):
    """A config file with the model and a 32 px test pipeline."""
    config = Config(
        dict(
            model=cfg,
            test_dataloader=dict(
                dataset=dict(
                    type='VTAB1k',
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='Resize', scale=(32, 32),
                             keep_ratio=False),
                        dict(type='PackInputs')
                    ]))))
    path = str(tmp_path / 'tiny_vapt.py')
    config.dump(path)
    return path


def test_get_model_and_init_prompted_model_load_prompt_files(
        files, images, tmp_path):
    config = _config_file(files['cfg'], tmp_path)
    expected = _logits(files['model'], images)
    for model in (get_model(config, pretrained=files['prompts']),
                  init_prompted_model(config, files['prompts'])):
        assert torch.equal(_logits(model, images), expected)
        assert model._dataset_meta['classes'] == CLASSES


def test_inferencer_scores_and_class_names_from_a_prompt_file(
        files, tmp_path):
    config = _config_file(files['cfg'], tmp_path)
    pixels = np.random.default_rng(0).integers(
        0, 256, size=(32, 32, 3), dtype=np.uint8)
    image = str(tmp_path / 'img.png')
    Image.fromarray(pixels).save(image)
    inferencer = ImageClassificationInferencer(
        model=config, pretrained=files['prompts'], device='cpu')
    result = inferencer(image)[0]

    # the reference: the trained model on the normalised RGB pixels
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    inputs = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    scores = _logits(files['model'], (inputs - mean) / std).softmax(1)[0]
    np.testing.assert_allclose(result['pred_scores'], scores.numpy(),
                               rtol=0, atol=1e-6)
    assert result['pred_class'] == CLASSES[int(scores.argmax())]
