"""Loading a PromptedClassifier is exact or refused, in every loading path:
``load_state_dict``, mmengine's ``load_checkpoint``, mmpretrain's
``get_model`` / ``init_model`` and ``ImageClassificationInferencer``."""
import copy
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.apis import ImageClassificationInferencer, get_model, init_model
from mmpretrain.registry import MODELS
from tiny_models import tiny_backbone, tiny_classifier

import vapt_mm  # noqa: F401
from vapt_mm.engine.hooks.trainable_checkpoint_hook import drop_frozen_weights
from vapt_mm.models.classifiers import backbone_fingerprint, checkpoint_source
from vapt_mm.models.classifiers.exact_loading import (encode_record,
                                                      read_backbone_record)
from vapt_mm.utils.user_errors import CheckpointError

NUM_CLASSES = 5
PREPROCESSOR = dict(
    type='ClsDataPreprocessor',
    num_classes=NUM_CLASSES,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# The keys of a trainable-only checkpoint of this model written before the
# backbone record existed (no '_extra_state'); they must keep loading.
OLD_TRAINABLE_KEYS = [
    'head.fc.bias', 'head.fc.weight', 'neck.generators.0.kernel',
    'neck.generators.0.norm.bias', 'neck.generators.0.norm.weight',
    'neck.generators.0.token_projector.bias',
    'neck.generators.0.token_projector.weight', 'neck.generators.1.kernel',
    'neck.generators.1.norm.bias', 'neck.generators.1.norm.weight',
    'neck.generators.1.token_projector.bias',
    'neck.generators.1.token_projector.weight', 'neck.projectors.0.fc1.weight',
    'neck.projectors.0.fc2.weight', 'neck.static_prompts.prompts'
]


def _write_backbone(path, seed):
    torch.manual_seed(seed)
    backbone = MODELS.build(tiny_backbone('vit'))
    backbone.init_weights()
    torch.save(backbone.state_dict(), path)
    return str(path)


def _model_cfg(pretrained=None, neck='vapt', **overrides):
    backbone = tiny_backbone('vit')
    if pretrained is not None:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
    cfg = tiny_classifier('vit', neck)
    cfg.update(backbone=backbone,
               data_preprocessor=copy.deepcopy(PREPROCESSOR), **overrides)
    return cfg


def _build(cfg):
    return MODELS.build(copy.deepcopy(cfg))


def _train_like(model, seed):
    """Give the neck and head values far from their initialisation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.copy_(torch.randn(param.shape, generator=generator))


def _save(model, path, trainable_only=True):
    checkpoint = dict(meta=dict(), state_dict=model.state_dict())
    if trainable_only:
        drop_frozen_weights(model, checkpoint)
    torch.save(checkpoint, path)
    return str(path)


IMAGES = [
    np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for i in range(3)
]


def _scores(model):
    """Softmax scores of IMAGES (HWC, BGR like cv2) through the model's
    data preprocessor, without mmpretrain's pipelines or APIs."""
    model.eval()
    inputs = [torch.from_numpy(img).permute(2, 0, 1) for img in IMAGES]
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=inputs), False)
        return model(data['inputs'], mode='tensor').softmax(dim=1)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('exact_loading')
    pretrained = _write_backbone(root / 'vit.pth', seed=11)
    other = _write_backbone(root / 'other_vit.pth', seed=12)
    cfg = _model_cfg(pretrained)
    trained = _build(cfg)
    trained.init_weights()
    _train_like(trained, seed=0)
    return dict(
        root=root,
        pretrained=pretrained,
        other=other,
        cfg=cfg,
        trained=trained,
        scores=_scores(trained),
        trainable=_save(trained, root / 'trainable.pth'),
        full=_save(trained, root / 'full.pth', trainable_only=False))


def _state_dict(path):
    return torch.load(path, weights_only=True)['state_dict']


def test_the_reference_is_not_the_untrained_model(setup):
    # the rows below would pass trivially if a random backbone or a fresh
    # head gave the same scores
    untrained = _build(setup['cfg'])
    untrained.init_weights()
    random_backbone = _build(setup['cfg'])
    random_backbone.neck.load_state_dict(setup['trained'].neck.state_dict())
    random_backbone.head.load_state_dict(setup['trained'].head.state_dict())
    for model in (untrained, random_backbone):
        assert (_scores(model) - setup['scores']).abs().max() > 1e-2


@pytest.mark.parametrize('kind', ['trainable', 'full'])
@pytest.mark.parametrize('initialised', [False, True])
def test_load_state_dict_gives_the_trained_model(setup, kind, initialised):
    model = _build(setup['cfg'])
    if initialised:  # as in training (load_from, resume)
        model.init_weights()
    result = model.load_state_dict(_state_dict(setup[kind]), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(
        _scores(model), setup['scores'], rtol=0, atol=1e-6)


def test_get_model_init_model_and_inferencer_give_the_trained_scores(setup):
    cfg = Config(
        dict(
            model=setup['cfg'],
            test_dataloader=dict(
                dataset=dict(
                    type='CustomDataset',
                    pipeline=[dict(type='PackInputs')]))))
    path = setup['trainable']
    for model in (get_model(cfg, pretrained=path), init_model(cfg, path)):
        torch.testing.assert_close(
            _scores(model), setup['scores'], rtol=0, atol=1e-6)
    inferencer = ImageClassificationInferencer(cfg, pretrained=path)
    results = inferencer(IMAGES, batch_size=2)
    scores = torch.from_numpy(np.stack([r['pred_scores'] for r in results]))
    torch.testing.assert_close(scores, setup['scores'], rtol=0, atol=1e-6)


def test_old_format_checkpoints_still_load(setup):
    # trainable-only: the keys of a checkpoint written before the record
    trained = setup['trained'].state_dict()
    old = {key: trained[key] for key in OLD_TRAINABLE_KEYS}
    model = _build(setup['cfg'])
    assert sorted(k for k in model.state_dict()
                  if not k.startswith('backbone.')) == sorted(
                      OLD_TRAINABLE_KEYS + ['_extra_state'])
    model.load_state_dict(old, strict=True)
    torch.testing.assert_close(
        _scores(model), setup['scores'], rtol=0, atol=1e-6)
    # full, without the record
    full = {k: v for k, v in trained.items() if k != '_extra_state'}
    model = _build(setup['cfg'])
    model.load_state_dict(full, strict=True)
    torch.testing.assert_close(
        _scores(model), setup['scores'], rtol=0, atol=1e-6)


def test_old_format_without_pretrained_source_is_refused(setup):
    trained = setup['trained'].state_dict()
    old = {key: trained[key] for key in OLD_TRAINABLE_KEYS}
    model = _build(_model_cfg())
    with pytest.raises(CheckpointError,
                       match=r"(?s)no backbone fingerprint.*type='Pretrained'"):
        model.load_state_dict(old)


def test_other_backbone_weights_are_refused_naming_both(setup):
    model = _build(_model_cfg(setup['other']))
    fingerprints = [
        backbone_fingerprint(torch.load(path))
        for path in (setup['pretrained'], setup['other'])
    ]
    with checkpoint_source(setup['trainable']):
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(model, setup['trainable'])
    message = str(error.value)
    assert 'trained on other backbone weights' in message
    assert f"checkpoint {setup['trainable']}" in message
    for path, fingerprint in zip((setup['pretrained'], setup['other']),
                                 fingerprints):
        assert path in message and fingerprint in message
    assert 'allow_other_backbone_weights=True' in message


def test_the_option_allows_other_backbone_weights(setup):
    model = _build(
        _model_cfg(setup['other'], allow_other_backbone_weights=True))
    load_checkpoint(model, setup['trainable'])
    other = torch.load(setup['other'])
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, other[key]), key
    for part in ('neck', 'head'):
        trained = getattr(setup['trained'], part).state_dict()
        for key, value in getattr(model, part).state_dict().items():
            assert torch.equal(value, trained[key]), f'{part}.{key}'


def test_a_changed_backbone_in_memory_is_refused(setup):
    # initialised from the right file, then changed: not silently used
    model = _build(setup['cfg'])
    model.init_weights()
    with torch.no_grad():
        model.backbone.ln1.weight.add_(1e-3)
    with pytest.raises(CheckpointError, match='other backbone weights'):
        model.load_state_dict(_state_dict(setup['trainable']))


def _vpt_checkpoint(setup):
    vpt = _build(_model_cfg(setup['pretrained'], neck='vpt-deep'))
    vpt.init_weights()
    return _save(vpt, setup['root'] / 'vpt.pth')


@pytest.mark.parametrize('row', [
    'num_classes', 'num_tokens', 'backbone_only', 'vpt_into_vapt',
    'missing_head_key', 'partial_backbone', 'trained_backbone'
])
def test_checkpoints_that_do_not_fit_are_refused(setup, row):
    cfg, path = setup['cfg'], setup['trainable']
    if row == 'num_classes':
        cfg = _model_cfg(setup['pretrained'],
                         head=dict(type='LinearClsHead', num_classes=3,
                                   in_channels=32))
        expected = [r'head\.fc\.weight: file \(5, 32\), model \(3, 32\)']
    elif row == 'num_tokens':
        cfg = _model_cfg(setup['pretrained'])
        cfg['neck']['num_tokens'] = 2
        expected = [r'neck\.static_prompts\.prompts: file \(\d+, 3, 32\), '
                    r'model \(\d+, 2, 32\)']
    elif row == 'backbone_only':
        path = setup['pretrained']
        expected = [r'missing: +head\.fc\.bias', r'unexpected: +cls_token',
                    'looks like backbone weights']
    elif row == 'vpt_into_vapt':
        path = _vpt_checkpoint(setup)
        expected = [r'missing: +neck\.generators\.0\.kernel',
                    r'unexpected: +neck\.prompts\.prompts',
                    'another prompt neck']
    elif row == 'missing_head_key':
        checkpoint = torch.load(path)
        del checkpoint['state_dict']['head.fc.bias']
        path = str(setup['root'] / 'no_bias.pth')
        torch.save(checkpoint, path)
        expected = [r'lacks 1 key\(s\)', r'missing: +head\.fc\.bias$']
    elif row == 'partial_backbone':
        checkpoint = torch.load(setup['full'])
        del checkpoint['state_dict']['backbone.ln1.weight']
        path = str(setup['root'] / 'partial.pth')
        torch.save(checkpoint, path)
        num = len(setup['trained'].backbone.state_dict())
        expected = [f'holds {num - 1} of the {num} frozen backbone tensors',
                    r'missing backbone\.ln1\.weight']
    else:  # the model trains its backbone: a trainable-only file lacks it
        cfg = _model_cfg(setup['pretrained'], freeze_backbone=False)
        expected = [r'missing: +backbone\.cls_token', 'freeze_backbone=False']
    model = _build(cfg)
    with checkpoint_source(path):
        with pytest.raises(CheckpointError) as error:
            # mmengine's loader, non-strict as in every mmengine path
            load_checkpoint(model, path, strict=False)
    message = str(error.value)
    assert f'checkpoint {path}' in message
    for pattern in expected:
        assert re.search(pattern, message, flags=re.MULTILINE), (pattern,
                                                                  message)


def test_the_file_is_named_only_inside_checkpoint_source(setup):
    model = _build(_model_cfg(setup['pretrained'], neck='vpt-deep'))
    with pytest.raises(CheckpointError) as error:
        model.load_state_dict(_state_dict(setup['trainable']))
    assert 'the state dict being loaded' in str(error.value)
    assert setup['trainable'] not in str(error.value)


def test_a_prefixed_classifier_is_completed_too(setup):
    # e.g. the classifier inside a wrapper module
    wrapper = nn.ModuleDict(dict(model=_build(setup['cfg'])))
    state = {
        f'model.{k}': v
        for k, v in _state_dict(setup['trainable']).items()
    }
    wrapper.load_state_dict(state, strict=True)
    torch.testing.assert_close(
        _scores(wrapper['model']), setup['scores'], rtol=0, atol=1e-6)


def test_unreadable_or_newer_records_are_refused(setup):
    state = _state_dict(setup['trainable'])
    model = _build(setup['cfg'])
    for garbage in ('sha', torch.zeros(3), torch.tensor([255, 0, 1],
                                                         dtype=torch.uint8)):
        with pytest.raises(CheckpointError, match='not readable'):
            model.load_state_dict(dict(state, _extra_state=garbage))
    record = read_backbone_record(state['_extra_state'])
    newer = encode_record(dict(record, version=99))
    with pytest.raises(CheckpointError, match='newer vapt_mm'):
        model.load_state_dict(dict(state, _extra_state=newer))


def test_every_state_dict_value_is_a_tensor(setup):
    # mmengine broadcasts each state-dict value in distributed training and
    # EMA copies them: the backbone record must be a tensor too
    state = setup['trained'].state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    record = read_backbone_record(state['_extra_state'])
    assert record == dict(
        version=1,
        backbone_fingerprint=backbone_fingerprint(
            torch.load(setup['pretrained'])),
        num_frozen_tensors=len(setup['trained'].backbone.state_dict()),
        backbone_checkpoint=setup['pretrained'])
