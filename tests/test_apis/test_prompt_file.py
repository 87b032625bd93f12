"""Prompt files: a round trip gives identical logits, another backbone or
another model is refused, the file is raw tensors and JSON (no pickle)."""
import json
import struct

import numpy as np
import pytest
import torch
from apis_test_utils import (NUM_CLASSES, fresh_model, model_cfg,
                             trained_model)
from mmengine.config import Config
from mmpretrain.registry import MODELS
from safetensors.torch import save_file

from vapt_mm.apis import (is_prompt_file, load_prompt_file, load_weights,
                          read_prompt_file, read_prompt_file_header,
                          save_prompt_file)
from vapt_mm.apis.prompt_file import HEADER_KEY
from vapt_mm.engine.hooks.trainable_checkpoint_hook import drop_frozen_weights
from vapt_mm.models.classifiers import backbone_fingerprint
from vapt_mm.utils.user_errors import (CheckpointError, CheckpointFormatError,
                                       ConfigError, ConfigTypeError)

CLASSES = ['cat', 'dog', 'bird', 'fish', 'frog']


def _logits(model, images):
    with torch.no_grad():
        return model(images, mode='tensor')


@pytest.mark.parametrize('neck', ['vpt-shallow', 'vpt-deep', 'vapt'])
def test_round_trip_gives_identical_logits(backbones, images, tmp_path,
                                           neck):
    cfg = model_cfg(backbones['a'], neck)
    model = trained_model(cfg)
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path, classes=CLASSES)

    # a model built from the config, never initialised (as get_model and
    # tools/test.py build it): the backbone comes from its pretrained file
    loaded = fresh_model(cfg)
    header = load_prompt_file(loaded, path)
    loaded.eval()
    assert torch.equal(_logits(loaded, images), _logits(model, images))
    assert header['classes'] == CLASSES
    assert loaded._dataset_meta == dict(classes=CLASSES)


def test_file_holds_exactly_the_trained_tensors(backbones, tmp_path):
    model = trained_model(model_cfg(backbones['a'], 'vapt'))
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path)
    tensors, _ = read_prompt_file(path)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert sorted(tensors) == sorted(trained)
    assert all(k.startswith(('neck.', 'head.')) for k in tensors)
    for key, value in trained.items():
        assert torch.equal(tensors[key], value.detach())


def test_prompt_file_contains_no_pickle(backbones, tmp_path):
    """Every byte is the header length, the JSON header or the raw bytes of
    a declared tensor, and those bytes are the model's tensors."""
    model = trained_model(model_cfg(backbones['a'], 'vpt-deep'))
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path, classes=CLASSES)
    data = open(path, 'rb').read()
    (length, ) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + length].decode('utf-8'))
    body = data[8 + length:]
    metadata = header.pop('__metadata__')
    assert set(metadata) == {'format', HEADER_KEY}
    json.loads(metadata[HEADER_KEY])  # plain JSON
    dtypes = {'F32': np.float32}
    spans = []
    state = model.state_dict()
    for key, info in header.items():
        begin, end = info['data_offsets']
        spans.append((begin, end))
        values = np.frombuffer(
            body[begin:end], dtype=dtypes[info['dtype']]).reshape(
                info['shape'])
        assert np.array_equal(values, state[key].numpy()), key
    spans.sort()
    assert spans[0][0] == 0 and spans[-1][1] == len(body)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_header_records_backbone_model_and_classes(backbones, tmp_path):
    cfg = model_cfg(backbones['a'], 'vapt')
    model = trained_model(cfg)
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path, classes=CLASSES,
                     config=Config(dict(model=cfg)))
    header = read_prompt_file_header(path)
    weights = torch.load(backbones['a'])
    assert header['backbone']['fingerprint'] == backbone_fingerprint(weights)
    assert header['backbone']['checkpoint'] == backbones['a']
    assert header['backbone']['num_frozen_tensors'] == len(weights)
    assert header['model']['neck'] == cfg['neck']
    assert header['model']['backbone']['type'] == 'VisionTransformer'
    assert header['structure']['num_tokens'] == cfg['neck']['num_tokens']
    assert header['structure']['num_classes'] == NUM_CLASSES
    assert header['classes'] == CLASSES
    assert is_prompt_file(path)
    assert not is_prompt_file(backbones['a'])


def test_refuses_another_backbone(backbones, tmp_path):
    model = trained_model(model_cfg(backbones['a'], 'vapt'))
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path)
    other = fresh_model(model_cfg(backbones['b'], 'vapt'))
    with pytest.raises(CheckpointError) as info:
        load_prompt_file(other, path)
    message = str(info.value)
    assert 'other backbone weights' in message
    assert path in message and backbones['b'] in message


def test_refuses_a_model_that_computes_otherwise_with_the_same_shapes(
        backbones, tmp_path):
    model = trained_model(model_cfg(backbones['a'], 'vapt'))
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path)
    # the same tensors, but the head reads averaged patch tokens
    other = fresh_model(
        model_cfg(backbones['a'], 'vapt',
                  backbone=dict(out_type='avg_featmap')))
    with pytest.raises(CheckpointError) as info:
        load_prompt_file(other, path)
    assert ("backbone_out_type: file 'cls_token', model 'avg_featmap'"
            in str(info.value))


def test_refuses_another_prompt_length_naming_both(backbones, tmp_path):
    model = trained_model(model_cfg(backbones['a'], 'vpt-deep'))
    path = str(tmp_path / 'task.safetensors')
    save_prompt_file(model, path)
    other = fresh_model(
        model_cfg(backbones['a'], 'vpt-deep', neck=dict(num_tokens=5)))
    with pytest.raises(CheckpointError, match='num_tokens: file 3, model 5'):
        load_weights(other, path)


def test_class_names_must_match_the_head(backbones, tmp_path):
    model = trained_model(model_cfg(backbones['a'], 'vapt'))
    with pytest.raises(ConfigError, match='3 class names .* 5 classes'):
        save_prompt_file(model, str(tmp_path / 'x.safetensors'),
                         classes=['a', 'b', 'c'])
    assert not (tmp_path / 'x.safetensors').exists()


def _checkpoints(model, cfg):
    meta = dict(
        cfg=Config(dict(model=cfg)).pretty_text,
        dataset_meta=dict(classes=tuple(CLASSES)))
    full = dict(meta=dict(meta), state_dict=model.state_dict())
    trainable_only = dict(meta=dict(meta), state_dict=model.state_dict())
    drop_frozen_weights(model, trainable_only)
    return full, trainable_only


def test_full_and_trainable_only_checkpoints_give_the_model_s_file(
        backbones, tmp_path):
    cfg = model_cfg(backbones['a'], 'vapt')
    model = trained_model(cfg)
    reference = str(tmp_path / 'model.safetensors')
    save_prompt_file(model, reference)
    expected_tensors, expected = read_prompt_file(reference)
    for kind, checkpoint in zip(('full', 'trainable_only'),
                                _checkpoints(model, cfg)):
        ckpt_path = str(tmp_path / f'{kind}.pth')
        torch.save(checkpoint, ckpt_path)
        out = str(tmp_path / f'{kind}.safetensors')
        header = save_prompt_file(ckpt_path, out)
        tensors, _ = read_prompt_file(out)
        assert sorted(tensors) == sorted(expected_tensors)
        assert all(torch.equal(tensors[k], expected_tensors[k])
                   for k in tensors)
        assert header['backbone'] == expected['backbone']
        assert header['structure'] == expected['structure']
        assert header['classes'] == CLASSES  # from meta['dataset_meta']
        assert header['source'] == f'{kind}.pth'


def test_a_record_stored_as_json_bytes_is_read(backbones, tmp_path):
    """The backbone record is stored as the uint8 tensor of its JSON (a
    tensor-only state dict); extraction reads the fingerprint from it
    alone, without the checkpoint meta."""
    cfg = model_cfg(backbones['a'], 'vapt')
    model = trained_model(cfg)
    _, trainable_only = _checkpoints(model, cfg)
    record = trainable_only['state_dict']['_extra_state']
    assert isinstance(record, torch.Tensor) and record.dtype == torch.uint8
    json.loads(bytes(record.tolist()).decode('utf-8'))  # it is JSON
    del trainable_only['meta']['backbone_fingerprint']
    header = save_prompt_file(trainable_only,
                              str(tmp_path / 'x.safetensors'))
    assert header['backbone']['fingerprint'] == backbone_fingerprint(
        torch.load(backbones['a']))


def test_checkpoint_without_fingerprint_or_config_is_refused(
        backbones, tmp_path):
    cfg = model_cfg(backbones['a'], 'vapt')
    model = trained_model(cfg)
    _, trainable_only = _checkpoints(model, cfg)
    del trainable_only['state_dict']['_extra_state']
    del trainable_only['meta']['backbone_fingerprint']
    with pytest.raises(CheckpointError, match='records no backbone '
                       'fingerprint'):
        save_prompt_file(trainable_only, str(tmp_path / 'x.safetensors'))
    _, trainable_only = _checkpoints(model, cfg)
    del trainable_only['meta']['cfg']
    with pytest.raises(ConfigError, match='--config'):
        save_prompt_file(trainable_only, str(tmp_path / 'x.safetensors'))


def test_checkpoint_that_does_not_fit_the_config_is_refused(
        backbones, tmp_path):
    cfg = model_cfg(backbones['a'], 'vapt')
    _, trainable_only = _checkpoints(trained_model(cfg), cfg)
    other = model_cfg(backbones['a'], 'vapt', head=dict(num_classes=7))
    with pytest.raises(CheckpointError) as info:
        save_prompt_file(trainable_only, str(tmp_path / 'x.safetensors'),
                         config=Config(dict(model=other)))
    assert 'head.fc.weight: file (5, 32), config (7, 32)' in str(info.value)


def test_only_prompt_tuned_models_are_saved(backbones, tmp_path):
    plain = MODELS.build(
        dict(type='ImageClassifier', backbone=model_cfg(
            backbones['a'])['backbone'], head=dict(
                type='LinearClsHead', num_classes=2, in_channels=32)))
    with pytest.raises(ConfigTypeError, match='PromptedClassifier'):
        save_prompt_file(plain, str(tmp_path / 'x.safetensors'))
    tuned_backbone = fresh_model(
        model_cfg(backbones['a'], 'vapt', freeze_backbone=False))
    with pytest.raises(ConfigError, match='nothing is frozen'):
        save_prompt_file(tuned_backbone, str(tmp_path / 'x.safetensors'))


def test_foreign_safetensors_file_is_refused(backbones, tmp_path):
    path = str(tmp_path / 'model.safetensors')
    save_file({'head.fc.weight': torch.zeros(5, 32)}, path)
    model = fresh_model(model_cfg(backbones['a'], 'vapt'))
    with pytest.raises(CheckpointFormatError, match=HEADER_KEY):
        load_weights(model, path)


def test_vit_b16_vapt_prompt_file_is_under_300_kb(tmp_path):
    cfg = Config.fromfile('configs/_base_/models/vit-b16_vapt.py').model
    cfg.backbone.pop('init_cfg')  # no pretrained weights in the tests
    cfg.neck.num_tokens = 10
    cfg.head.num_classes = 10
    model = MODELS.build(cfg)
    path = str(tmp_path / 'vit-b16_vapt.safetensors')
    save_prompt_file(model, path)
    size = (tmp_path / 'vit-b16_vapt.safetensors').stat().st_size
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 55608 + 768 * 10 + 10
    assert 4 * trainable < size < 300_000
