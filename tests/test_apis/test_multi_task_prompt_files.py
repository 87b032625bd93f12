"""Prompt files served as tasks of one multi-task model: logits equal each
task's own model, and a file trained on other backbone weights is refused."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS
from tiny_models import tiny_backbone, tiny_head

import vapt_mm  # noqa: F401
from vapt_mm.apis import add_prompt_file_task, save_prompt_file
from vapt_mm.models import MultiTaskPromptedClassifier
from vapt_mm.utils.user_errors import (CheckpointError, CheckpointFormatError,
                                       ConfigError)

NECKS = {
    'shallow': dict(type='VPTNeck', num_tokens=2, deep=False),
    'deep': dict(type='VPTNeck', num_tokens=5, deep=True),
    'vapt': dict(type='VAPTNeck', num_tokens=3),
}


def _trained(neck: dict, backbone_state=None):
    cfg = dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
               neck=neck, head=tiny_head('vit', num_classes=4))
    model = MODELS.build(cfg)
    if backbone_state is not None:
        model.backbone.load_state_dict(backbone_state)
    with torch.no_grad():  # stand-in for training: non-zero projectors too
        for param in list(model.neck.parameters()) + list(
                model.head.parameters()):
            param.add_(torch.randn_like(param) * 0.1)
    return model.eval(), dict(model=cfg)


def test_prompt_files_become_tasks_with_their_models_logits(tmp_path):
    torch.manual_seed(0)
    first, cfg = _trained(NECKS['shallow'])
    backbone_state = copy.deepcopy(first.backbone.state_dict())
    singles = {'shallow': first}
    paths = {}
    for name, neck in NECKS.items():
        if name not in singles:
            singles[name], cfg = _trained(neck, backbone_state)
        else:
            cfg = dict(model=dict(type='PromptedClassifier',
                                  backbone=tiny_backbone('vit'), neck=neck,
                                  head=tiny_head('vit', num_classes=4)))
        paths[name] = str(tmp_path / f'{name}.safetensors')
        save_prompt_file(singles[name], paths[name], config=cfg)

    multi = MultiTaskPromptedClassifier(backbone=tiny_backbone('vit'))
    multi.backbone.load_state_dict(backbone_state)
    for name, path in paths.items():
        assert add_prompt_file_task(multi, path) == name
    multi.eval()
    images = torch.rand(6, 3, 32, 32)
    tasks = ['vapt', 'shallow', 'deep', 'deep', 'vapt', 'shallow']
    with torch.no_grad():
        mixed = multi(images, tasks=tasks)
        for i, task in enumerate(tasks):
            expected = singles[task](images[i:i + 1])[0]
            torch.testing.assert_close(mixed[i], expected, atol=1e-5,
                                       rtol=0)


def test_a_prompt_file_of_other_backbone_weights_is_refused(tmp_path):
    torch.manual_seed(0)
    model, cfg = _trained(NECKS['deep'])
    path = str(tmp_path / 'deep.safetensors')
    save_prompt_file(model, path, config=cfg)
    multi = MultiTaskPromptedClassifier(backbone=tiny_backbone('vit'))
    with pytest.raises(CheckpointError, match='other backbone weights'):
        add_prompt_file_task(multi, path)
    assert multi.task_names == []


def test_a_prompt_file_without_its_config_cannot_become_a_task(tmp_path):
    torch.manual_seed(0)
    model, _ = _trained(NECKS['deep'])
    path = str(tmp_path / 'deep.safetensors')
    save_prompt_file(model, path)
    multi = MultiTaskPromptedClassifier(backbone=tiny_backbone('vit'))
    multi.backbone.load_state_dict(model.backbone.state_dict())
    with pytest.raises(CheckpointFormatError, match='records no neck'):
        add_prompt_file_task(multi, path)


def test_a_prompt_file_that_trained_backbone_parameters_is_refused(
        tmp_path):
    # frozen_exclude keeps the last norm trainable: the file then carries
    # backbone tensors a shared frozen backbone cannot take
    torch.manual_seed(0)
    cfg = dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
               neck=NECKS['deep'], head=tiny_head('vit', num_classes=4),
               frozen_exclude=[r'^ln1\.'])
    model = MODELS.build(cfg).eval()
    path = str(tmp_path / 'deep.safetensors')
    save_prompt_file(model, path, config=dict(model=cfg))
    multi = MultiTaskPromptedClassifier(backbone=tiny_backbone('vit'))
    multi.backbone.load_state_dict(model.backbone.state_dict())
    with pytest.raises(ConfigError, match='also trained backbone') as error:
        add_prompt_file_task(multi, path)
    assert 'backbone.ln1.weight' in str(error.value)
    assert path in str(error.value)
    assert multi.task_names == []


def test_a_linear_probe_prompt_file_is_refused_as_such(tmp_path):
    # a head without a prompt neck: refused with what it is, not as a file
    # that lacks its config
    torch.manual_seed(0)
    cfg = dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
               neck=None, head=tiny_head('vit', num_classes=4))
    model = MODELS.build(cfg).eval()
    path = str(tmp_path / 'linear.safetensors')
    save_prompt_file(model, path, config=dict(model=cfg))
    multi = MultiTaskPromptedClassifier(backbone=tiny_backbone('vit'))
    multi.backbone.load_state_dict(model.backbone.state_dict())
    with pytest.raises(ConfigError, match='holds a linear probe') as error:
        add_prompt_file_task(multi, path)
    assert path in str(error.value) and 'tools/infer.py' in str(error.value)
    assert multi.task_names == []
