"""TrainableCheckpointHook: small checkpoints that evaluate like full ones."""
import os.path as osp

import copy

import pytest
import torch
import torch.nn as nn
from engine_test_utils import (EMBED_DIMS, NUM_CLASSES, TINY_VIT, make_runner,
                               tiny_model_cfg)
from mmengine.hooks import Hook
from mmpretrain.registry import MODELS

from vapt_mm.engine.hooks import TrainableCheckpointHook
from vapt_mm.models.utils.frozen_state import frozen_state_dict_keys
from vapt_mm.engine.hooks.trainable_checkpoint_hook import (
    complete_trainable_only_checkpoint, drop_frozen_weights)
from vapt_mm.models.classifiers import backbone_fingerprint
from vapt_mm.models.classifiers.exact_loading import read_backbone_record
from vapt_mm.utils.user_errors import CheckpointError

HOOK = dict(type='TrainableCheckpointHook')


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory, pretrained_backbone):
    """The same one-epoch run, saved once in full and once trainable-only."""
    root = tmp_path_factory.mktemp('trainable_ckpt')
    paths = {}
    for kind, hooks in (('full', []), ('trainable', [HOOK])):
        runner = make_runner(
            str(root / kind),
            model=tiny_model_cfg(pretrained_backbone),
            custom_hooks=hooks)
        runner.train()
        paths[kind] = str(root / kind / 'epoch_1.pth')
        if kind == 'trainable':
            paths['trainable_names'] = [
                n for n, p in runner.model.named_parameters()
                if p.requires_grad
            ]
    return paths


def _predict(work_dir, checkpoint, pretrained, hooks):
    runner = make_runner(
        work_dir,
        model=tiny_model_cfg(pretrained),
        train=False,
        test=True,
        load_from=checkpoint,
        custom_hooks=hooks)
    runner.test()
    return runner.test_metric.stacked()


def test_checkpoint_holds_only_trainable_part(checkpoints,
                                              pretrained_backbone):
    full = torch.load(checkpoints['full'])
    small = torch.load(checkpoints['trainable'])
    trainable = checkpoints['trainable_names']
    # the trainable tensors and the model's record of its backbone
    assert sorted(small['state_dict']) == sorted(trainable +
                                                 ['_extra_state'])
    assert any(name.startswith('neck.') for name in trainable)
    assert any(name.startswith('head.') for name in trainable)
    # same training, so the trainable tensors are the same as in the full one
    for key, value in small['state_dict'].items():
        assert torch.equal(value, full['state_dict'][key]), key
    # the record is a tensor (mmengine broadcasts every state-dict value)
    record = read_backbone_record(small['state_dict']['_extra_state'])
    assert record == read_backbone_record(full['state_dict']['_extra_state'])
    # the fingerprint of the pretrained file's tensors, computed from the file
    fingerprint = backbone_fingerprint(torch.load(pretrained_backbone))
    assert record['backbone_fingerprint'] == fingerprint
    assert record['backbone_checkpoint'] == pretrained_backbone

    meta = small['meta']
    dropped = sorted(set(full['state_dict']) - set(small['state_dict']))
    assert meta['trainable_only'] is True
    assert meta['dropped_keys'] == dropped
    assert meta['num_dropped_keys'] == len(dropped) > 0
    assert all(key.startswith('backbone.') for key in dropped)
    assert meta['pretrained_checkpoints'] == {'backbone': pretrained_backbone}
    assert meta['backbone_fingerprint'] == fingerprint
    # the optimizer state is kept (for the trainable parameters only)
    assert len(small['optimizer']['state']) == len(trainable)
    assert 'param_schedulers' in small

    size_full = osp.getsize(checkpoints['full'])
    size_small = osp.getsize(checkpoints['trainable'])
    assert size_small * 5 < size_full, (size_small, size_full)


@pytest.mark.parametrize('hooks', [[HOOK], []], ids=['hook', 'no-hook'])
def test_test_predictions_equal_full_checkpoint(checkpoints,
                                                pretrained_backbone,
                                                tmp_path, hooks):
    # Runner.test() never calls init_weights; the model completes the
    # trainable-only checkpoint from its pretrained backbone, with or
    # without the hook in the config.
    from_full = _predict(
        str(tmp_path / 'full'), checkpoints['full'], pretrained_backbone, [])
    from_small = _predict(
        str(tmp_path / 'small'), checkpoints['trainable'],
        pretrained_backbone, hooks)
    assert from_full.shape == (6, 3)
    assert torch.equal(from_full, from_small)


@pytest.mark.parametrize('hooks', [[HOOK], []], ids=['hook', 'no-hook'])
def test_model_without_pretrained_is_refused(checkpoints, tmp_path, hooks):
    with pytest.raises(CheckpointError,
                       match=r"(?s)trained on other backbone weights.*"
                       r"no init_cfg=dict\(type='Pretrained'"):
        _predict(str(tmp_path), checkpoints['trainable'], None, hooks)


def test_prompted_classifier_completes_itself(checkpoints,
                                              pretrained_backbone):
    # the model, not the function, completes (and checks) the checkpoint
    checkpoint = torch.load(checkpoints['trainable'])
    keys = sorted(checkpoint['state_dict'])
    model = MODELS.build(tiny_model_cfg(pretrained_backbone))
    assert complete_trainable_only_checkpoint(model, checkpoint) == []
    assert sorted(checkpoint['state_dict']) == keys


def _plain_classifier(pretrained):
    """A plain mmpretrain ImageClassifier whose backbone is frozen by hand:
    a model that does not complete trainable-only checkpoints itself."""
    backbone = copy.deepcopy(TINY_VIT)
    backbone['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=backbone,
            head=dict(
                type='LinearClsHead',
                num_classes=NUM_CLASSES,
                in_channels=EMBED_DIMS)))
    model.backbone.requires_grad_(False)
    return model


@pytest.fixture
def plain_checkpoint(pretrained_backbone):
    torch.manual_seed(7)
    model = _plain_classifier(pretrained_backbone)
    model.init_weights()
    checkpoint = dict(meta={}, state_dict=model.state_dict())
    drop_frozen_weights(model, checkpoint)
    return checkpoint


def test_missing_trainable_key_is_refused(plain_checkpoint,
                                          pretrained_backbone):
    del plain_checkpoint['state_dict']['head.fc.bias']
    model = _plain_classifier(pretrained_backbone)
    with pytest.raises(RuntimeError, match=r'lacks 1 key.*head\.fc\.bias'):
        complete_trainable_only_checkpoint(model, plain_checkpoint)


def test_undropped_missing_key_is_refused(plain_checkpoint,
                                          pretrained_backbone):
    plain_checkpoint['meta']['dropped_keys'].remove('backbone.ln1.weight')
    model = _plain_classifier(pretrained_backbone)
    with pytest.raises(RuntimeError,
                       match=r'writer did not drop: backbone\.ln1\.weight'):
        complete_trainable_only_checkpoint(model, plain_checkpoint)


def test_completed_checkpoint_matches_pretrained(plain_checkpoint,
                                                 pretrained_backbone):
    model = _plain_classifier(pretrained_backbone)
    filled = complete_trainable_only_checkpoint(model, plain_checkpoint)
    assert sorted(filled) == plain_checkpoint['meta']['dropped_keys']
    pretrained = torch.load(pretrained_backbone)
    for key in filled:
        assert torch.equal(plain_checkpoint['state_dict'][key],
                           pretrained[key[len('backbone.'):]]), key
    # a full checkpoint passes through untouched
    full = dict(meta={}, state_dict=model.state_dict())
    keys = list(full['state_dict'])
    assert complete_trainable_only_checkpoint(model, full) == []
    assert list(full['state_dict']) == keys


def test_frozen_buffers():
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model.head = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 2))
    model.backbone.requires_grad_(False)
    buffers = {
        'backbone.1.running_mean', 'backbone.1.running_var',
        'backbone.1.num_batches_tracked'
    }
    frozen_params = {
        'backbone.0.weight', 'backbone.0.bias', 'backbone.1.weight',
        'backbone.1.bias'
    }
    assert frozen_state_dict_keys(model) == frozen_params | buffers
    assert frozen_state_dict_keys(model, include_buffers=False) == \
        frozen_params

    checkpoint = dict(meta={}, state_dict=model.state_dict())
    assert set(drop_frozen_weights(model, checkpoint, False)) == frozen_params
    assert buffers < set(checkpoint['state_dict'])


def test_bad_arguments():
    with pytest.raises(TypeError, match='drop_frozen_buffers'):
        TrainableCheckpointHook(drop_frozen_buffers='yes')
    with pytest.raises(KeyError, match='state_dict'):
        drop_frozen_weights(nn.Linear(2, 2), dict(meta={}))


class _CaptureAtBeforeTrain(Hook):
    """Keeps the model's tensors as they are after load_from."""

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        self.state = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }


def test_load_from_without_hook_loads_the_trained_part(
        checkpoints, pretrained_backbone, tmp_path):
    capture = _CaptureAtBeforeTrain()
    runner = make_runner(
        str(tmp_path),
        model=tiny_model_cfg(pretrained_backbone),
        load_from=checkpoints['trainable'],
        custom_hooks=[capture])
    runner.train()
    full = torch.load(checkpoints['full'])['state_dict']
    assert capture.state.keys() == full.keys()
    for key, value in capture.state.items():
        assert torch.equal(value, full[key]), key
