"""VTAB1k: reading the list files, metadata and build-time errors."""
import os
import os.path as osp
import re

import pytest
from mmpretrain.registry import DATASETS

from vapt_mm.datasets import (VTAB1K_GROUPS, VTAB1K_NUM_CLASSES,
                              VTAB1K_TASK_GROUP, VTAB1K_TASKS, VTAB1k)
from vapt_mm.utils.user_errors import ConfigError, DataError, MissingFileError

DOCS = r'see docs/datasets\.md'


def read_list(path):
    """Reference parser: (path, label) pairs, written independently."""
    pairs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                *words, label = line.split()
                pairs.append((' '.join(words), int(label)))
    return pairs


def write_lines(path, lines):
    with open(path, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))


def test_benchmark_constants_follow_vtab_order():
    # class counts in VTAB order, as the VTAB-1k release lists them
    assert [VTAB1K_NUM_CLASSES[t] for t in VTAB1K_TASKS] == [
        100, 102, 47, 102, 37, 10, 397, 2, 10, 45, 5, 8, 6, 6, 4, 16, 16, 18, 9
    ]
    assert {
        g: len(ts)
        for g, ts in VTAB1K_GROUPS.items()
    } == {
        'Natural': 7,
        'Specialized': 4,
        'Structured': 8
    }
    assert VTAB1K_TASK_GROUP['svhn'] == 'Natural'
    assert VTAB1K_TASK_GROUP['diabetic_retinopathy'] == 'Specialized'
    assert VTAB1K_TASK_GROUP['smallnorb_ele'] == 'Structured'
    assert sorted(VTAB1K_TASK_GROUP) == sorted(VTAB1K_TASKS)


@pytest.mark.parametrize('split,size', [('train800', 12), ('val200', 5),
                                        ('train800val200', 17), ('test', 7)])
def test_lengths_labels_and_paths(vtab_root, split, size):
    ds = DATASETS.build(
        dict(type='VTAB1k', data_root=vtab_root, task='eurosat', split=split))
    assert isinstance(ds, VTAB1k)
    assert len(ds) == size
    expected = read_list(osp.join(vtab_root, 'eurosat', f'{split}.txt'))
    got = [(ds.get_data_info(i)['img_path'], ds.get_data_info(i)['gt_label'])
           for i in range(len(ds))]
    assert got == [(osp.join(vtab_root, 'eurosat', p), label)
                   for p, label in expected]


@pytest.mark.parametrize('task,num_classes,group',
                         [('eurosat', 10, 'Specialized'),
                          ('kitti', 4, 'Structured')])
def test_metainfo_and_class_count(vtab_root, task, num_classes, group):
    ds = VTAB1k(vtab_root, task, 'train800')
    assert ds.metainfo['classes'] == tuple(str(i) for i in range(num_classes))
    assert ds.num_classes == num_classes
    assert ds.group == group
    assert set(ds.get_gt_labels().tolist()) == set(range(num_classes))


def test_path_with_spaces_splits_on_last_whitespace(vtab_root):
    task_dir = osp.join(vtab_root, 'kitti')
    os.rename(osp.join(task_dir, 'images/val200/00000.png'),
              osp.join(task_dir, 'images/val200/my image.png'))
    write_lines(
        osp.join(task_dir, 'val200.txt'),
        ['images/val200/my image.png\t3', '', 'images/val200/00001.png 1'])
    ds = VTAB1k(vtab_root, 'kitti', 'val200')
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(task_dir, 'images/val200/my image.png')
    assert info['gt_label'] == 3


def test_user_class_names_are_kept_and_checked(vtab_root):
    names = ('car', 'van', 'truck', 'tram')
    assert VTAB1k(vtab_root, 'kitti', 'test',
                  classes=names).metainfo['classes'] == names
    with pytest.raises(ValueError,
                       match=r"'kitti' has 4 classes but 2 class names"):
        VTAB1k(vtab_root, 'kitti', 'test', classes=('a', 'b'))


def test_error_data_root_missing(tmp_path):
    root = str(tmp_path / 'nowhere')
    pattern = (rf"VTAB-1k data root '{re.escape(root)}' does not exist.*"
               rf'19 task folders.*{DOCS}')
    with pytest.raises(FileNotFoundError, match=pattern):
        VTAB1k(root, 'eurosat', 'test')


def test_error_unknown_task_lists_valid_ones(vtab_root):
    with pytest.raises(
            ValueError,
            match=r"Unknown VTAB-1k task 'cifar100'; expected one of: cifar, "
            rf'caltech101, .*smallnorb_ele.*{DOCS}'):
        VTAB1k(vtab_root, 'cifar100', 'test')


def test_error_unknown_split(vtab_root):
    with pytest.raises(
            ValueError,
            match=r"Unknown VTAB-1k split 'train'; expected one of: "
            r'train800, val200, train800val200, test'):
        VTAB1k(vtab_root, 'eurosat', 'train')


def test_error_task_folder_missing(vtab_root):
    folder = re.escape(osp.join(vtab_root, 'dtd'))
    pattern = rf"task folder of 'dtd' '{folder}' does not exist.*{DOCS}"
    with pytest.raises(FileNotFoundError, match=pattern):
        VTAB1k(vtab_root, 'dtd', 'test')


def test_error_annotation_file_missing(vtab_root):
    ann = osp.join(vtab_root, 'eurosat', 'val200.txt')
    os.remove(ann)
    with pytest.raises(
            FileNotFoundError,
            match=rf"annotation file for split 'val200' of task 'eurosat' "
            rf"'{re.escape(ann)}' is missing.*{DOCS}"):
        VTAB1k(vtab_root, 'eurosat', 'val200')


@pytest.mark.parametrize('bad',
                         ['images/val200/00002.png', 'images/x.png cat'])
def test_error_line_does_not_parse(vtab_root, bad):
    ann = osp.join(vtab_root, 'eurosat', 'val200.txt')
    write_lines(
        ann, ['images/val200/00000.png 0', 'images/val200/00001.png 1', bad])
    with pytest.raises(
            ValueError,
            match=rf'{re.escape(ann)}, line 3: cannot parse .*expected '
            rf"'<relative/path.ext> <integer label>'.*{DOCS}"):
        VTAB1k(vtab_root, 'eurosat', 'val200')


def test_error_images_missing_names_first_few_and_count(vtab_root):
    img_dir = osp.join(vtab_root, 'eurosat', 'images', 'train800')
    for i in range(7):
        os.remove(osp.join(img_dir, f'{i:05d}.png'))
    ann = osp.join(vtab_root, 'eurosat', 'train800.txt')
    with pytest.raises(FileNotFoundError) as info:
        VTAB1k(vtab_root, 'eurosat', 'train800')
    msg = str(info.value)
    assert f"7 of 12 images listed in '{ann}' are missing" in msg
    assert osp.join(img_dir, '00000.png') in msg
    assert osp.join(img_dir, '00004.png') in msg
    assert osp.join(img_dir, '00005.png') not in msg
    assert 'and 2 more' in msg
    assert 'see docs/datasets.md' in msg
    # the check can be switched off (e.g. for remote storage)
    assert len(VTAB1k(vtab_root, 'eurosat', 'train800',
                      check_files=False)) == 12


@pytest.mark.parametrize('label', [10, -1])
def test_error_label_out_of_range(vtab_root, label):
    ann = osp.join(vtab_root, 'eurosat', 'val200.txt')
    write_lines(ann, [
        'images/val200/00000.png 0', f'images/val200/00001.png {label}',
        'images/val200/00002.png 9'
    ])
    pattern = (rf'{re.escape(ann)}, line 2: label {label} is outside '
               rf'\[0, 10\) \(num_classes=10; {DOCS}')
    with pytest.raises(ValueError, match=pattern):
        VTAB1k(vtab_root, 'eurosat', 'val200')


def test_error_when_ann_file_is_passed(vtab_root):
    with pytest.raises(TypeError, match="VTAB1k sets 'ann_file' itself"):
        VTAB1k(vtab_root, 'eurosat', 'test', ann_file='x.txt')


@pytest.mark.parametrize('content', ['', '\n\n'])
def test_error_empty_annotation_file_names_it(vtab_root, content):
    # mmengine would fail later with 'need at least one array to concatenate'
    ann = osp.join(vtab_root, 'eurosat', 'val200.txt')
    with open(ann, 'w') as f:
        f.write(content)
    with pytest.raises(DataError,
                       match=rf"Annotation file '{re.escape(ann)}' lists no "
                       r'images.*docs/errors\.md#empty-annotation-file'):
        VTAB1k(vtab_root, 'eurosat', 'val200')


def test_errors_are_user_errors_with_a_docs_section(vtab_root, tmp_path):
    with pytest.raises(MissingFileError, match='errors.md#data-root'):
        VTAB1k(str(tmp_path / 'nowhere'), 'eurosat', 'test')
    with pytest.raises(ConfigError, match='errors.md#unknown-name'):
        VTAB1k(vtab_root, 'eurosat', 'val')
    ann = osp.join(vtab_root, 'eurosat', 'val200.txt')
    write_lines(ann, ['images/val200/00000.png 10'])
    with pytest.raises(DataError, match='errors.md#label-range'):
        VTAB1k(vtab_root, 'eurosat', 'val200')
