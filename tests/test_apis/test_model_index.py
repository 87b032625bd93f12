"""The VAPT/VPT configs are names in mmpretrain's model index:
list_models, get_model and inference_model work by name with a prompt
file, and every committed entry is what the generator writes."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
import yaml
from apis_test_utils import model_cfg, trained_model
from mmengine.config import Config
from mmpretrain import get_model, inference_model, list_models
from mmpretrain.apis.model import ModelHub
from PIL import Image

from vapt_mm.apis import register_model_index, save_prompt_file
from vapt_mm.apis.model_index import (MODEL_INDEX,
                                      register_model_index_lazily,
                                      registered_model_indexes)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAME = 'vapt-tinytest_vit-32_toy'


@pytest.fixture(scope='module')
def tiny_index(backbones, tmp_path_factory):
    """A tiny VAPT config registered under NAME, and its prompt file."""
    root = tmp_path_factory.mktemp('model_index')
    cfg = model_cfg(backbones['a'], 'vapt')
    Config(
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
                    ])))).dump(str(root / 'tiny_vapt.py'))
    metafile = root / 'metafile.yml'
    metafile.write_text(
        yaml.safe_dump(
            dict(Models=[
                dict(
                    Name=NAME,
                    Config='tiny_vapt.py',
                    Results=[
                        dict(Task='Image Classification', Dataset='toy',
                             Metrics={})
                    ])
            ])))
    assert register_model_index(str(metafile)) == [NAME]
    assert register_model_index(str(metafile)) == []  # once only
    model = trained_model(cfg)
    prompts = str(root / 'tiny.safetensors')
    save_prompt_file(model, prompts, classes=['a', 'b', 'c', 'd', 'e'])
    return dict(model=model, prompts=prompts, root=root)


def test_list_models_lists_the_registered_index(tiny_index):
    assert list_models('vapt-tinytest*') == [NAME]
    # mmpretrain's own names are still there
    assert 'resnet50_8xb32_in1k' in list_models('resnet50_8xb32_in1k')


def test_get_model_by_name_gives_the_trained_scores(tiny_index, images):
    model = get_model(NAME, pretrained=tiny_index['prompts'])
    with torch.no_grad():
        expected = tiny_index['model'](images, mode='tensor')
        assert torch.equal(model(images, mode='tensor'), expected)


def test_inference_model_by_name_gives_the_trained_scores(tiny_index):
    pixels = np.random.default_rng(1).integers(
        0, 256, size=(32, 32, 3), dtype=np.uint8)
    image = str(tiny_index['root'] / 'img.png')
    Image.fromarray(pixels).save(image)
    result = inference_model(
        NAME, image, pretrained=tiny_index['prompts'], device='cpu')
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    inputs = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        scores = tiny_index['model']((inputs - mean) / std,
                                     mode='tensor').softmax(1)[0]
    np.testing.assert_allclose(result['pred_scores'], scores.numpy(),
                               rtol=0, atol=1e-6)
    assert result['pred_class'] == 'abcde'[int(scores.argmax())]


def _committed_entries():
    entries = []
    for folder in ('vapt', 'vpt'):
        with open(osp.join(ROOT, 'configs', folder, 'metafile.yml')) as f:
            entries += yaml.safe_load(f)['Models']
    return entries


def test_the_committed_names_are_registered():
    names = sorted(e['Name'] for e in _committed_entries())
    assert len(names) == len(set(names)) == 168
    assert [n for n in list_models('vapt_*')] == [
        n for n in names if n.startswith('vapt_')
    ]
    assert set(list_models('vpt-*')) >= {
        n
        for n in names if n.startswith('vpt-')
    }
    metainfo = ModelHub.get('vapt_vit-b16_vtab-eurosat')
    assert metainfo.config.model.neck.num_tokens == 10
    assert metainfo.config.model.head.num_classes == 10
    assert metainfo.results[0].task == 'Image Classification'
    assert MODEL_INDEX == osp.join(ROOT, 'model-index.yml')


def test_every_committed_entry_is_what_the_generator_writes():
    """Each entry's config exists, builds (on the meta device, without
    pretrained weights) with the recorded parameter counts, and carries
    the published number only where its setting is the published one."""
    path = osp.join(ROOT, 'tools', 'misc', 'generate_metafiles.py')
    spec = importlib.util.spec_from_file_location('generate_metafiles', path)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    expected = generator.expected_files()
    for rel, content in expected.items():
        with open(osp.join(ROOT, rel)) as f:
            assert f.read() == content, (
                f'{rel} is stale: run python tools/misc/generate_metafiles.py')
    for entry in _committed_entries():
        assert osp.isfile(osp.join(ROOT, entry['Config'])), entry['Config']
    published = {
        e['Name']: e['Results'][0]['Metrics']['Top 1 Accuracy']
        for e in _committed_entries() if e['Results'][0]['Metrics']
    }
    assert published == {
        'vpt-deep_vit-b16_vtab-eurosat': 96.1,
        'vpt-deep_vit-b16_vtab-dmlab': 46.5,
        'vpt-deep_vit-b16_vtab-sun397': 49.6,
        'vpt-shallow_vit-b16_vtab-eurosat': 92.0,
        'vpt-shallow_vit-b16_vtab-dmlab': 40.5,
        'vpt-shallow_vit-b16_vtab-sun397': 51.2,
    }


def test_an_entry_s_parameter_counts_are_the_built_model_s():
    from mmpretrain.registry import MODELS
    entry = next(e for e in _committed_entries()
                 if e['Name'] == 'vapt_vit-b16_vtab-dtd')
    cfg = Config.fromfile(osp.join(ROOT, entry['Config']))
    cfg.model.backbone.pop('init_cfg')
    model = MODELS.build(cfg.model)
    assert entry['Metadata']['Parameters'] == sum(
        p.numel() for p in model.parameters())
    assert entry['Metadata']['Trainable Parameters'] == \
        55608 + 768 * 47 + 47


def test_the_index_is_parsed_when_model_hub_first_needs_names():
    """import vapt_mm only wraps ModelHub's own first-use registration."""
    hook = ModelHub.__dict__['_register_mmpretrain_models']
    assert getattr(hook.__func__, '_vapt_mm_wrapped', False)
    assert register_model_index_lazily() is True  # idempotent
    assert ModelHub.__dict__['_register_mmpretrain_models'] is hook
    list_models('vapt_vit-b16_vtab-eurosat')
    assert MODEL_INDEX in registered_model_indexes()
