"""Every (method, task) config of the VTAB-1k / FGVC benchmarks.

Each config is loaded with ``Config.fromfile``, checked against the task its
file name names, and its model is built with a small stand-in for the
ViT-B/16 (same type, tiny width and depth, no pretrained weights), so all
216 files build in seconds. Full-size builds and parameter counts of the
EuroSAT configs are in test_method_configs.py.
"""
import copy
import glob
import importlib.util
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import vapt_mm  # noqa: F401
from vapt_mm.datasets import FGVC_NUM_CLASSES, VTAB1K_NUM_CLASSES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS_DIR = osp.join(ROOT, 'configs')
METHOD_FOLDERS = ('vapt', 'vpt', 'linear', 'finetune')
CONFIGS = sorted(
    p for folder in METHOD_FOLDERS
    for p in glob.glob(osp.join(CONFIGS_DIR, folder, '*.py')))
NAME = re.compile(r'^(?P<backbone>vit-b16(-mae|-mocov3)?)(-(?P<variant>deep|'
                  r'shallow))?_(?P<benchmark>vtab|fgvc)-(?P<task>\w+)\.py$')
CHECKPOINTS = {
    'vit-b16': 'checkpoints/vit-b16_in21k.pth',
    'vit-b16-mae': 'checkpoints/vit-b16_mae.pth',
    'vit-b16-mocov3': 'checkpoints/vit-b16_mocov3.pth',
}
NECKS = {'vapt': 'VAPTNeck', 'vpt': 'VPTNeck', 'linear': None,
         'finetune': None}
TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                 feedforward_channels=64)


def _rel(path):
    return osp.relpath(path, CONFIGS_DIR)


def _load_generator():
    path = osp.join(ROOT, 'tools', 'misc', 'generate_benchmark_configs.py')
    spec = importlib.util.spec_from_file_location('generate_configs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_configs_are_what_the_generator_writes():
    expected = _load_generator().expected_files()
    assert sorted(expected) == sorted(_rel(p) for p in CONFIGS)
    for rel, content in expected.items():
        with open(osp.join(CONFIGS_DIR, rel)) as f:
            assert f.read() == content, rel


def test_every_task_has_every_method():
    names = {_rel(p) for p in CONFIGS}
    tasks = [f'vtab-{t}' for t in VTAB1K_NUM_CLASSES]
    tasks += [f'fgvc-{d}' for d in FGVC_NUM_CLASSES]
    assert len(tasks) == 24
    for task in tasks:
        for rel in ('vapt/vit-b16', 'vpt/vit-b16-deep', 'vpt/vit-b16-shallow',
                    'linear/vit-b16', 'finetune/vit-b16',
                    'vapt/vit-b16-mae', 'vapt/vit-b16-mocov3',
                    'vpt/vit-b16-mae-deep', 'vpt/vit-b16-mocov3-deep'):
            assert f'{rel}_{task}.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_matches_its_name_and_builds(path):
    folder = _rel(path).split(osp.sep)[0]
    match = NAME.match(osp.basename(path))
    assert match, f'{_rel(path)} does not follow the naming scheme'
    cfg = Config.fromfile(path)
    benchmark, task = match['benchmark'], match['task']
    num_classes = (VTAB1K_NUM_CLASSES
                   if benchmark == 'vtab' else FGVC_NUM_CLASSES)[task]
    key = 'task' if benchmark == 'vtab' else 'dataset'
    for split in ('train', 'val', 'test'):
        assert cfg[f'{split}_dataloader'].dataset[key] == task
    assert cfg.model.head.num_classes == num_classes
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=CHECKPOINTS[match['backbone']])
    neck = cfg.model.get('neck')
    assert (neck or {}).get('type') == NECKS[folder]
    if folder == 'vpt':
        assert neck.deep == (match['variant'] == 'deep')

    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg')
    model_cfg.backbone.update(arch=TINY_ARCH, img_size=32, patch_size=8)
    model_cfg.head.in_channels = TINY_ARCH['embed_dims']
    model = MODELS.build(model_cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if folder == 'finetune':
        assert len(trainable) == len(list(model.parameters()))
    else:
        assert trainable and all(
            n.startswith(('neck.', 'head.')) for n in trainable)
    assert model.head.fc.out_features == num_classes
