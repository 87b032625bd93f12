"""Every method and base model config loads and builds its model.

The backbone's pretrained init_cfg is removed (random weights) and nothing
runs on images: ViT-B/16 is only built, frozen and counted.
"""
import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import vapt_mm  # noqa: F401  (registers the models)
from vapt_mm.datasets import VTAB1K_NUM_CLASSES
from vapt_mm.models.classifiers import PromptedClassifier

CONFIGS_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
# The EuroSAT configs are built at full ViT-B/16 size here; every other
# generated (method, task) config is built with a small stand-in backbone in
# test_benchmark_configs.py.
METHOD_CONFIGS = [
    osp.join(CONFIGS_DIR, rel) for rel in (
        'vapt/vit-b16_vtab-eurosat.py', 'vpt/vit-b16-deep_vtab-eurosat.py',
        'vpt/vit-b16-shallow_vtab-eurosat.py')
]
MODEL_CONFIGS = sorted(glob.glob(osp.join(CONFIGS_DIR, '_base_', 'models',
                                          '*.py')))
PRETRAINED = 'checkpoints/vit-b16_in21k.pth'
HEAD_10 = 768 * 10 + 10  # LinearClsHead, 10 classes

# Trainable parameters (prompt modules + head), counted as docs/method.md does:
# VAPT p=10 K=2 r=8 on ViT-B/16: 55,608; VPT-deep: 12 * p * 768;
# VPT-shallow: p * 768; the VPT authors' eurosat VPT-deep count 929,290.
EXPECTED_TRAINABLE = {
    'vapt/vit-b16_vtab-eurosat.py': 55_608 + HEAD_10,
    'vpt/vit-b16-deep_vtab-eurosat.py': 929_290,
    'vpt/vit-b16-shallow_vtab-eurosat.py': 100 * 768 + HEAD_10,
    '_base_/models/vit-b16_vapt.py': 55_608 + HEAD_10,
    '_base_/models/vit-b16_vpt-deep.py': 12 * 10 * 768 + HEAD_10,
    '_base_/models/vit-b16_vpt-shallow.py': 10 * 768 + HEAD_10,
    '_base_/models/vit-b16_linear.py': HEAD_10,
    # full fine-tuning: the whole ViT-B/16 (85,798,656) and the head
    '_base_/models/vit-b16_finetune.py': 85_798_656 + HEAD_10,
}


def _rel(path):
    return osp.relpath(path, CONFIGS_DIR)


def _build_without_pretrained(cfg):
    model_cfg = copy.deepcopy(cfg.model)
    init_cfg = model_cfg.backbone.pop('init_cfg')
    assert init_cfg == dict(type='Pretrained', checkpoint=PRETRAINED)
    return MODELS.build(model_cfg)


@pytest.mark.parametrize('path', METHOD_CONFIGS + MODEL_CONFIGS, ids=_rel)
def test_config_builds_a_prompted_vit(path):
    cfg = Config.fromfile(path)
    model = _build_without_pretrained(cfg)
    assert isinstance(model, PromptedClassifier)
    trainable = {
        name: p.numel()
        for name, p in model.named_parameters() if p.requires_grad
    }
    if cfg.model.get('freeze_backbone', True):
        assert not any(p.requires_grad for p in model.backbone.parameters())
        assert all(name.startswith(('neck.', 'head.')) for name in trainable)
    else:  # full fine-tuning
        assert all(p.requires_grad for p in model.parameters())
    if _rel(path) in EXPECTED_TRAINABLE:
        assert sum(trainable.values()) == EXPECTED_TRAINABLE[_rel(path)]


@pytest.mark.parametrize('path', METHOD_CONFIGS, ids=_rel)
def test_method_config_is_a_complete_run(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports == dict(
        imports=['vapt_mm'], allow_failed_imports=False)
    # every dataloader points at the same VTAB-1k task, and the head has
    # that task's class count
    tasks = {
        cfg[f'{split}_dataloader'].dataset.task
        for split in ('train', 'val', 'test')
    }
    assert len(tasks) == 1
    assert cfg.model.head.num_classes == VTAB1K_NUM_CLASSES[tasks.pop()]
    assert cfg.train_dataloader.dataset.data_root == 'data/vtab-1k'
    assert cfg.train_dataloader.dataset.split == 'train800val200'
    assert cfg.test_dataloader.dataset.split == 'test'
    # the published protocol: SGD momentum 0.9, batch 64, lr scaled by
    # batch / 256, 100 epochs
    assert cfg.train_dataloader.batch_size == 64
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'SGD' and optimizer.momentum == 0.9
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.randomness.seed == 42


def test_vpt_deep_eurosat_is_the_vpt_authors_setting():
    cfg = Config.fromfile(
        osp.join(CONFIGS_DIR, 'vpt', 'vit-b16-deep_vtab-eurosat.py'))
    assert cfg.model.neck == dict(
        type='VPTNeck', num_tokens=100, deep=True, dropout=0.1)
    assert cfg.optim_wrapper.optimizer.lr == 1.0
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-3


def test_vapt_eurosat_uses_the_released_defaults():
    cfg = Config.fromfile(
        osp.join(CONFIGS_DIR, 'vapt', 'vit-b16_vtab-eurosat.py'))
    assert cfg.model.neck == dict(
        type='VAPTNeck', num_tokens=10, kernel_size=2, padding=0,
        hidden_dim=8, mlp_dropout=0.1, conv_dropout=0.1, vpt_depth=1,
        dropout=0.0, share_projector=True)
