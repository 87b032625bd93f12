"""backbone_fingerprint: the same tensors give the same fingerprint, from a
module or from any file format; any change gives another one."""
import hashlib

import pytest
import torch
from mmpretrain.registry import MODELS
from safetensors.torch import load_file, save_file
from tiny_models import tiny_backbone, tiny_classifier

import vapt_mm  # noqa: F401
from vapt_mm.models.classifiers import backbone_fingerprint
from vapt_mm.models.classifiers.exact_loading import (backbone_record,
                                                      read_backbone_record)


@pytest.fixture(scope='module')
def backbone():
    torch.manual_seed(3)
    vit = MODELS.build(tiny_backbone('vit'))
    vit.init_weights()
    return vit


def test_same_tensors_same_fingerprint_in_every_format(backbone, tmp_path):
    expected = backbone_fingerprint(backbone)
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    torch.save(state, tmp_path / 'vit.pth')
    save_file(state, str(tmp_path / 'vit.safetensors'))
    assert backbone_fingerprint(state) == expected
    assert backbone_fingerprint(dict(reversed(list(state.items())))) == \
        expected
    assert backbone_fingerprint(
        torch.load(tmp_path / 'vit.pth', weights_only=True)) == expected
    assert backbone_fingerprint(load_file(str(tmp_path /
                                              'vit.safetensors'))) == expected
    classifier = {f'backbone.{k}': v for k, v in state.items()}
    classifier['head.fc.weight'] = torch.zeros(5, 32)
    assert backbone_fingerprint(classifier, prefix='backbone.') == expected


def test_any_change_gives_another_fingerprint(backbone):
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    reference = backbone_fingerprint(state)

    changed = dict(state)
    changed['ln1.weight'] = state['ln1.weight'].clone()
    changed['ln1.weight'][0] += 1e-6
    renamed = dict(state)
    renamed['ln1.scale'] = renamed.pop('ln1.weight')
    as_half = dict(state, **{'ln1.weight': state['ln1.weight'].half()})
    reshaped = dict(state, **{'ln1.weight': state['ln1.weight'][None]})
    dropped = {k: v for k, v in state.items() if k != 'ln1.bias'}
    fingerprints = {
        backbone_fingerprint(s)
        for s in (changed, renamed, as_half, reshaped, dropped)
    }
    assert len(fingerprints) == 5
    assert reference not in fingerprints


def test_documented_scheme():
    # SHA-256 over sorted "key<TAB>sha1(dtype|shape|bytes)" lines
    state = {'b': torch.tensor([1.0, 2.0]), 'a': torch.tensor([[3]])}
    lines = ''
    for key in sorted(state):
        value = state[key]
        tensor_digest = hashlib.sha1(
            f'{value.dtype}|{tuple(value.shape)}|'.encode() +
            value.numpy().tobytes()).hexdigest()
        lines += f'{key}\t{tensor_digest}\n'
    expected = 'sha256-v1:' + hashlib.sha256(lines.encode()).hexdigest()
    assert backbone_fingerprint(state) == expected


def test_keys_select_a_part(backbone):
    state = backbone.state_dict()
    part = ['cls_token', 'ln1.bias']
    assert backbone_fingerprint(backbone, keys=part) == backbone_fingerprint(
        {k: state[k] for k in part})
    with pytest.raises(KeyError, match='not_a_key'):
        backbone_fingerprint(backbone, keys=['cls_token', 'not_a_key'])
    with pytest.raises(TypeError, match='extra holds a dict'):
        backbone_fingerprint(dict(state, extra={}))


def test_classifier_records_its_frozen_backbone(backbone):
    cfg = tiny_classifier('vit', 'vapt')
    model = MODELS.build(cfg)
    model.backbone.load_state_dict(backbone.state_dict())
    record = read_backbone_record(model.state_dict()['_extra_state'])
    assert record['backbone_fingerprint'] == backbone_fingerprint(backbone)
    assert record['num_frozen_tensors'] == len(backbone.state_dict())

    # a backbone parameter left trainable is not part of it
    model = MODELS.build(dict(cfg, frozen_exclude=['^ln1\\.']))
    model.backbone.load_state_dict(backbone.state_dict())
    frozen = [k for k in backbone.state_dict() if not k.startswith('ln1.')]
    assert backbone_record(model)['backbone_fingerprint'] == \
        backbone_fingerprint(backbone, keys=frozen)
