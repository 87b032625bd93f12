"""The preflight of tools/train.py and tools/test.py: what it reads from the
annotation files, the head / backbone / pretrained checks and its errors."""
import copy
import json
import os
import os.path as osp
import re

import pytest
import torch
from engine_test_utils import EMBED_DIMS, TINY_VIT
from mmengine.config import Config
from mmpretrain.registry import MODELS
from tiny_models import TINY_BACKBONES, image_size

from vapt_mm.datasets.toy_data import make_toy_fgvc, make_toy_vtab1k
from vapt_mm.engine.preflight import (backbone_width, build_backbone_on_meta,
                                      check_head_fits_labels,
                                      check_head_in_channels,
                                      check_pretrained_backbone, load_config,
                                      preflight_test, preflight_train,
                                      read_split_labels)
from vapt_mm.utils.user_errors import (CheckpointFormatError, ConfigError,
                                       ConfigKeyError, DataError,
                                       MissingFileError)

SIZES = dict(train800=12, val200=5, test=7)


def reference_list(path):
    """(count, largest label, its 1-based line) read independently."""
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                rows.append((int(line.split()[-1]), number))
    top = max(rows)
    return len(rows), top[0], top[1]


def vtab_cfg(root, split, task='eurosat'):
    return dict(type='VTAB1k', data_root=root, task=task, split=split)


@pytest.fixture
def vtab_root(tmp_path):
    return make_toy_vtab1k(str(tmp_path / 'vtab-1k'), tasks=('eurosat', ),
                           sizes=SIZES)


@pytest.mark.parametrize('split',
                         ['train800', 'val200', 'train800val200', 'test'])
def test_vtab1k_labels_are_read_from_the_list_file(vtab_root, split):
    labels, skipped = read_split_labels(vtab_cfg(vtab_root, split),
                                        'train_dataloader')
    ann = osp.join(vtab_root, 'eurosat', f'{split}.txt')
    count, top, line = reference_list(ann)
    assert skipped == []
    assert len(labels) == 1
    entry = labels[0]
    assert (entry.count, entry.max_label, entry.max_label_at) == (
        count, top, f'line {line}')
    assert entry.source == ann
    assert entry.num_classes == 10
    assert entry.loader == 'train_dataloader'


@pytest.mark.parametrize('split,count', [('train', 102), ('trainval', 204),
                                         ('test', 102)])
def test_fgvc_labels_follow_the_sorted_class_ids(tmp_path, split, count):
    root = make_toy_fgvc(str(tmp_path / 'fgvc'), datasets=('oxfordflower', ))
    labels, _ = read_split_labels(
        dict(type='FGVC', data_root=root, dataset='oxfordflower',
             split=split), 'val_dataloader')
    # reference: the ids in the JSON files, ranked
    ids = set()
    for name in ('train', 'val', 'test'):
        with open(osp.join(root, 'OxfordFlower', f'{name}.json')) as f:
            ids |= set(json.load(f).values())
    assert labels[0].count == count
    assert labels[0].max_label == len(ids) - 1 == 101
    assert labels[0].num_classes == 102


def write_custom(root, lines, name='train.txt'):
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, name), 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))
    return name


def test_custom_dataset_ann_file_folders_and_no_labels(tmp_path):
    root = str(tmp_path / 'custom')
    ann = write_custom(root, ['a.png 0', 'sub dir/b.png 4', 'c.png 2'])
    labels, _ = read_split_labels(
        dict(type='CustomDataset', data_root=root, ann_file=ann,
             data_prefix=''), 'train_dataloader')
    assert (labels[0].count, labels[0].max_label, labels[0].max_label_at,
            labels[0].num_classes) == (3, 4, 'line 2', None)

    names = write_custom(root, ['a.png', 'b.png'], 'names.txt')
    labels, _ = read_split_labels(
        dict(type='CustomDataset', data_root=root, ann_file=names,
             with_label=False), 'test_dataloader')
    assert (labels[0].count, labels[0].max_label) == (2, None)

    for folder in ('cat', 'dog', 'eel'):
        os.makedirs(osp.join(root, 'folders', folder))
    labels, _ = read_split_labels(
        dict(type='CustomDataset', data_root=root, data_prefix='folders'),
        'train_dataloader')
    assert (labels[0].max_label, labels[0].max_label_at) == (
        2, "class folder 'eel'")


def test_wrappers_are_unwrapped_and_other_types_skipped(vtab_root, tmp_path):
    root = str(tmp_path / 'custom')
    ann = write_custom(root, ['a.png 7'])
    cfg = dict(
        type='ConcatDataset',
        datasets=[
            dict(type='RepeatDataset', times=2,
                 dataset=vtab_cfg(vtab_root, 'val200')),
            dict(type='CustomDataset', data_root=root, ann_file=ann),
            dict(type='CIFAR10', data_root='data/cifar10'),
        ])
    labels, skipped = read_split_labels(cfg, 'train_dataloader')
    assert [e.description for e in labels] == [
        'VTAB1k eurosat/val200', f'CustomDataset {osp.join(root, ann)}']
    assert len(skipped) == 1 and "'CIFAR10'" in skipped[0]


def test_data_errors_name_the_file_and_the_docs_section(vtab_root, tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(MissingFileError,
                       match=rf"data root '{re.escape(missing)}'.*"
                       r'errors\.md#data-root'):
        read_split_labels(vtab_cfg(missing, 'test'), 'test_dataloader')

    ann = osp.join(vtab_root, 'eurosat', 'val200.txt')
    open(ann, 'w').close()
    with pytest.raises(DataError,
                       match=rf"'{re.escape(ann)}' lists no images.*"
                       r'errors\.md#empty-annotation-file'):
        read_split_labels(vtab_cfg(vtab_root, 'val200'), 'val_dataloader')
    os.remove(ann)
    with pytest.raises(MissingFileError,
                       match=rf"'{re.escape(ann)}' is missing.*"
                       r'errors\.md#annotation-files'):
        read_split_labels(vtab_cfg(vtab_root, 'val200'), 'val_dataloader')

    root = str(tmp_path / 'custom')
    ann = write_custom(root, ['a.png 0', '', 'b.png 1'])
    with pytest.raises(DataError, match=r'train\.txt, line 2: blank line'):
        read_split_labels(
            dict(type='CustomDataset', data_root=root, ann_file=ann),
            'train_dataloader')
    ann = write_custom(root, ['a.png 0', 'b.png -1'])
    with pytest.raises(DataError, match=r'line 2: label -1 is negative'):
        read_split_labels(
            dict(type='CustomDataset', data_root=root, ann_file=ann),
            'train_dataloader')
    with pytest.raises(ConfigKeyError,
                       match=r'train_dataloader\.dataset\.data_root is not '
                       'set'):
        read_split_labels(dict(type='VTAB1k', task='dtd'),
                          'train_dataloader')


def test_head_num_classes_against_the_labels(vtab_root):
    labels, _ = read_split_labels(vtab_cfg(vtab_root, 'train800'),
                                  'train_dataloader')
    ann = osp.join(vtab_root, 'eurosat', 'train800.txt')
    _, top, line = reference_list(ann)  # label 9 on line 10
    assert check_head_fits_labels(dict(num_classes=10), labels) is None
    with pytest.raises(ConfigError) as error:
        check_head_fits_labels(dict(num_classes=top), labels)
    message = str(error.value)
    assert f'holds label {top}' in message
    assert f'{ann}, line {line}' in message
    assert f'model.head.num_classes={top}' in message
    assert 'docs/errors.md#label-range' in message
    # labels fit, but the task has 10 classes
    with pytest.raises(ConfigError,
                       match=r'(?s)eurosat/train800 has 10 classes, but '
                       r'model\.head\.num_classes is 12.*'
                       r'errors\.md#class-count'):
        check_head_fits_labels(dict(num_classes=12), labels)
    assert check_head_fits_labels(dict(type='ClsHead'), labels) == \
        'model.head has no num_classes'


def head_input(outs):
    """The features a head gets from a backbone's outputs: the last stage,
    its first tensor (DeiT's distilled stage is a (cls, dist) pair)."""
    out = outs[-1]
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


TIMM_TINY = dict(type='TIMMBackbone', model_name='vit_tiny_patch16_224',
                 pretrained=False, img_size=32, patch_size=8)


@pytest.mark.parametrize('name', sorted(TINY_BACKBONES) + ['timm'])
def test_backbone_width_is_the_width_of_its_features(name):
    cfg = TIMM_TINY if name == 'timm' else TINY_BACKBONES[name]
    size = 32 if name == 'timm' else image_size(name)
    meta = build_backbone_on_meta(cfg)
    assert next(meta.parameters()).device.type == 'meta'
    # reference: the last dim of the features a classifier feeds its head
    # (PromptedClassifier runs MAEViT without masking, as training does)
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='PromptedClassifier', backbone=copy.deepcopy(cfg)))
    with torch.no_grad():
        features = head_input(
            model.extract_feat(torch.rand(1, 3, size, size), 'backbone'))
    assert backbone_width(meta) == features.shape[-1]


def test_timm_backbone_is_built_without_loading_weights(monkeypatch):
    import timm
    calls = []
    create_model = timm.create_model

    def recording_create_model(*args, **kwargs):
        calls.append(kwargs)
        return create_model(*args, **kwargs)

    monkeypatch.setattr(timm, 'create_model', recording_create_model)
    cfg = dict(TIMM_TINY, pretrained=True, checkpoint_path='timm.pth')
    assert backbone_width(build_backbone_on_meta(cfg)) == 192
    assert [(c['pretrained'], c['checkpoint_path']) for c in calls] == [
        (False, '')]


def model_cfg(in_channels=EMBED_DIMS, neck='vapt', **backbone_extra):
    necks = dict(vapt=dict(type='VAPTNeck', num_tokens=2),
                 gap=dict(type='GlobalAveragePooling'),
                 linear=dict(type='LinearNeck', in_channels=EMBED_DIMS,
                             out_channels=16),
                 none=None)
    return dict(
        type='PromptedClassifier',
        backbone=dict(copy.deepcopy(TINY_VIT), **backbone_extra),
        neck=necks[neck],
        head=dict(type='LinearClsHead', num_classes=3,
                  in_channels=in_channels))


def test_head_in_channels_against_the_backbone_width():
    backbone = build_backbone_on_meta(TINY_VIT)
    for neck in ('vapt', 'gap', 'none'):
        assert check_head_in_channels(model_cfg(neck=neck), backbone) is None
    with pytest.raises(ConfigError) as error:
        check_head_in_channels(model_cfg(in_channels=768), backbone)
    message = str(error.value)
    assert 'model.head.in_channels is 768' in message
    assert f'{EMBED_DIMS}-wide features' in message
    assert f'set model.head.in_channels={EMBED_DIMS}' in message
    assert 'docs/errors.md#in-channels' in message
    # a neck that may change the width: not compared
    assert 'may change the feature width' in check_head_in_channels(
        model_cfg(in_channels=16, neck='linear'), backbone)


def test_pretrained_file_present_and_fitting(pretrained_backbone, tmp_path):
    init = dict(type='Pretrained', checkpoint=pretrained_backbone)
    cfg = dict(copy.deepcopy(TINY_VIT), init_cfg=init)
    backbone = build_backbone_on_meta(cfg)
    assert check_pretrained_backbone(backbone, cfg) == pretrained_backbone
    # init_cfg may be a list
    listed = dict(cfg, init_cfg=[dict(type='TruncNormal', layer='Linear'),
                                 init])
    assert check_pretrained_backbone(backbone, listed) == pretrained_backbone
    assert check_pretrained_backbone(backbone, TINY_VIT) is None

    absent = str(tmp_path / 'absent.pth')
    with pytest.raises(MissingFileError) as error:
        check_pretrained_backbone(
            backbone, dict(cfg, init_cfg=dict(init, checkpoint=absent)))
    message = str(error.value)
    assert f"model.backbone.init_cfg.checkpoint='{absent}'" in message
    assert 'docs/errors.md#pretrained-missing' in message

    # weights of a 32-wide ViT for the 64-wide backbone
    narrow = dict(copy.deepcopy(TINY_VIT))
    narrow['arch'] = dict(narrow['arch'], embed_dims=32)
    other = str(tmp_path / 'narrow.pth')
    torch.save(MODELS.build(narrow).state_dict(), other)
    with pytest.raises(CheckpointFormatError) as error:
        check_pretrained_backbone(
            backbone, dict(cfg, init_cfg=dict(init, checkpoint=other)))
    message = str(error.value)
    assert 'does not fit the backbone VisionTransformer' in message
    assert 'cls_token: checkpoint (1, 1, 32), expected (1, 1, 64)' in message
    assert 'docs/errors.md#pretrained-mismatch' in message


def run_cfg(vtab_root, pretrained, **overrides):
    model = model_cfg()
    model['backbone']['init_cfg'] = dict(type='Pretrained',
                                         checkpoint=pretrained)
    model['head']['num_classes'] = 10
    cfg = dict(
        model=model,
        train_dataloader=dict(dataset=vtab_cfg(vtab_root, 'train800')),
        val_dataloader=dict(dataset=vtab_cfg(vtab_root, 'val200')),
        val_cfg=dict(),
        test_dataloader=dict(dataset=vtab_cfg(vtab_root, 'test')))
    cfg.update(overrides)
    return Config(cfg)


def test_preflight_checks_the_loaders_each_run_uses(vtab_root,
                                                    pretrained_backbone,
                                                    tmp_path):
    preflight_train(run_cfg(vtab_root, pretrained_backbone))
    preflight_test(run_cfg(vtab_root, pretrained_backbone))
    os.remove(osp.join(vtab_root, 'eurosat', 'test.txt'))
    # training reads train and val only
    preflight_train(run_cfg(vtab_root, pretrained_backbone))
    with pytest.raises(MissingFileError,
                       match=r'(?s)test\.txt.*config: test_dataloader'):
        preflight_test(run_cfg(vtab_root, pretrained_backbone))
    os.remove(osp.join(vtab_root, 'eurosat', 'val200.txt'))
    with pytest.raises(MissingFileError,
                       match=r'(?s)val200\.txt.*config: val_dataloader'):
        preflight_train(run_cfg(vtab_root, pretrained_backbone))
    # --no-validate: no val loop, the val data are not needed
    preflight_train(run_cfg(vtab_root, pretrained_backbone, val_cfg=None))
    # testing does not load the pretrained file
    absent = str(tmp_path / 'absent.pth')
    with pytest.raises(MissingFileError, match='absent.pth'):
        preflight_train(run_cfg(vtab_root, absent, val_cfg=None))
    make_toy_vtab1k(vtab_root, tasks=('eurosat', ), sizes=SIZES)
    preflight_test(run_cfg(vtab_root, absent))


def test_load_config_names_a_missing_file(tmp_path):
    path = str(tmp_path / 'nope.py')
    with pytest.raises(MissingFileError,
                       match=rf"(?s)'{re.escape(path)}' does not exist.*"
                       r'errors\.md#config-file'):
        load_config(path)
