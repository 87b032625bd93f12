"""build_classifier / load_weights: full and trainable-only checkpoints load
exactly, and checkpoints that do not fit are refused."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from tiny_models import tiny_classifier

import vapt_mm  # noqa: F401
from vapt_mm.deployment import build_classifier, load_weights
from vapt_mm.engine.hooks.trainable_checkpoint_hook import \
    drop_frozen_weights
from vapt_mm.utils.user_errors import (CheckpointError, ConfigError,
                                       MissingFileError)


def write_config(tmp_path, model_cfg, name='model_cfg.py'):
    cfg = Config(
        dict(
            model=model_cfg,
            default_scope='mmpretrain',
            custom_imports=dict(
                imports=['vapt_mm'], allow_failed_imports=False)))
    path = tmp_path / name
    cfg.dump(str(path))
    return str(path)


@pytest.fixture
def trained(tmp_path):
    """(config path, trained model, pretrained backbone file)."""
    torch.manual_seed(0)
    backbone_file = tmp_path / 'backbone.pth'
    source = MODELS.build(tiny_classifier('vit', 'vapt'))
    source.init_weights()
    torch.save(source.backbone.state_dict(), str(backbone_file))
    model_cfg = tiny_classifier('vit', 'vapt')
    model_cfg['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=str(backbone_file))
    model = MODELS.build(model_cfg)
    model.init_weights()
    with torch.no_grad():  # "training" moved the prompts and the head
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param))
    return write_config(tmp_path, model_cfg), model.eval(), backbone_file


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_full_checkpoint_loads_exactly(trained, tmp_path):
    config, model, _ = trained
    weights = tmp_path / 'full.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), str(weights))
    loaded = build_classifier(config, str(weights))
    assert not loaded.training
    assert_same_weights(loaded, model)


def test_trainable_only_checkpoint_takes_backbone_from_pretrained(
        trained, tmp_path):
    config, model, _ = trained
    checkpoint = dict(state_dict=copy.deepcopy(model.state_dict()), meta={})
    dropped = drop_frozen_weights(model, checkpoint)
    assert any(key.startswith('backbone.') for key in dropped)
    weights = tmp_path / 'trainable_only.pth'
    torch.save(checkpoint, str(weights))
    loaded = build_classifier(config, str(weights))
    assert_same_weights(loaded, model)


def test_checkpoint_of_another_model_is_refused(trained, tmp_path):
    config, _, _ = trained
    other = MODELS.build(tiny_classifier('vit', 'vpt-deep'))
    weights = tmp_path / 'vpt_deep.pth'
    torch.save(dict(state_dict=other.state_dict()), str(weights))
    with pytest.raises(CheckpointError) as error:
        build_classifier(config, str(weights))
    message = str(error.value)
    assert str(weights) in message
    assert 'neck.' in message  # names the keys that do not fit


def test_trainable_only_checkpoint_without_backbone_file_is_refused(
        trained, tmp_path):
    config, model, backbone_file = trained
    checkpoint = dict(state_dict=copy.deepcopy(model.state_dict()), meta={})
    drop_frozen_weights(model, checkpoint)
    weights = tmp_path / 'trainable_only.pth'
    torch.save(checkpoint, str(weights))
    backbone_file.unlink()
    # The frozen part comes from the config's Pretrained file: its absence
    # is the error, named with where to get the weights.
    with pytest.raises(MissingFileError) as error:
        build_classifier(config, str(weights))
    assert str(backbone_file) in str(error.value)
    assert 'docs/pretrained_weights.md' in str(error.value)


def test_missing_and_unreadable_files_are_refused(trained, tmp_path):
    config, model, _ = trained
    with pytest.raises(MissingFileError, match='nope.pth'):
        load_weights(model, str(tmp_path / 'nope.pth'))
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='garbage.pth'):
        load_weights(model, str(garbage))
    with pytest.raises(ConfigError, match='does not exist'):
        build_classifier(str(tmp_path / 'no_config.py'))
