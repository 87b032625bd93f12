"""vapt_mm.datasets.integrity: the checks behind check_dataset.py."""
import json
import os
import os.path as osp

import pytest

from vapt_mm.datasets import (check_fgvc, check_vtab1k, make_toy_fgvc,
                              make_toy_vtab1k)


@pytest.fixture
def full_vtab(tmp_path):
    """eurosat with the real split sizes (800 / 200 / 1000) and 20 test."""
    return make_toy_vtab1k(str(tmp_path / 'vtab-1k'), tasks=['eurosat'])


def by_split(report):
    return {(s.name, s.split): s for s in report.splits}


def test_clean_vtab_counts(full_vtab):
    report = check_vtab1k(full_vtab, tasks=['eurosat'])
    assert report.ok, report.format()
    splits = by_split(report)
    counts = {k[1]: (s.listed, s.found, s.expected) for k, s in splits.items()}
    assert counts == {
        'train800': (800, 800, 800),
        'val200': (200, 200, 200),
        'train800val200': (1000, 1000, 1000),
        'test': (20, 20, None),
    }
    text = report.format()
    assert 'eurosat' in text and 'found   1000 / expected 1000' in text
    assert 'found     20 / listed 20' in text
    assert text.splitlines()[-1].endswith('0 problem(s) in total: OK')


def test_vtab_problems_are_attributed_to_their_split(full_vtab):
    task_dir = osp.join(full_vtab, 'eurosat')
    os.remove(osp.join(task_dir, 'images', 'test', '00003.png'))
    with open(osp.join(task_dir, 'test.txt'), 'a') as f:
        f.write('images/test/00000.png 10\n')
    with open(osp.join(task_dir, 'val200.txt'), 'a') as f:
        f.write('not-a-line\n')
    report = check_vtab1k(full_vtab, tasks=['eurosat'])
    assert not report.ok
    splits = by_split(report)
    assert splits['eurosat', 'train800'].ok
    assert splits['eurosat', 'train800val200'].ok
    val_problems = splits['eurosat', 'val200'].problems
    assert len(val_problems) == 1
    assert 'val200.txt, line 201: cannot parse' in val_problems[0]
    test = splits['eurosat', 'test']
    assert (test.listed, test.found) == (21, 20)
    assert len(test.problems) == 2
    assert 'line 21: label 10 is outside [0, 10)' in test.problems[0]
    assert '1 of 21 images listed in' in test.problems[1]
    assert 'Summary: 4 split(s) checked, 2 with problems, 3 problem(s)' in \
        report.format()


def test_vtab_missing_task_and_root(tmp_path, full_vtab):
    report = check_vtab1k(full_vtab, tasks=['eurosat', 'dtd'])
    assert len(report.splits) == 4
    assert len(report.errors) == 1
    assert "task folder '" in report.errors[0]
    assert osp.join(full_vtab, 'dtd') in report.errors[0]
    root = str(tmp_path / 'nowhere')
    report = check_vtab1k(root)
    assert not report.ok and report.splits == []
    assert f"VTAB-1k data root '{root}' does not exist" in report.errors[0]


def test_vtab_unknown_names_raise(full_vtab):
    with pytest.raises(ValueError, match="Unknown VTAB-1k task 'cifar10'"):
        check_vtab1k(full_vtab, tasks=['cifar10'])
    with pytest.raises(ValueError, match="Unknown VTAB-1k split 'val'"):
        check_vtab1k(full_vtab, splits=['val'])


def test_verify_can_be_switched_off(full_vtab):
    bad = osp.join(full_vtab, 'eurosat', 'images', 'val200', '00002.png')
    with open(bad, 'wb') as f:
        f.write(b'garbage, not a PNG')
    assert not check_vtab1k(full_vtab, tasks=['eurosat']).ok
    assert check_vtab1k(full_vtab, tasks=['eurosat'], verify_images=False).ok


def test_expected_sizes_can_be_given(tmp_path):
    root = make_toy_vtab1k(str(tmp_path / 'v'),
                           tasks=['kitti'],
                           sizes=dict(train800=8, val200=2, test=3))
    assert not check_vtab1k(root, tasks=['kitti']).ok
    report = check_vtab1k(root,
                          tasks=['kitti'],
                          expected_sizes=dict(train800=8,
                                              val200=2,
                                              train800val200=10))
    assert report.ok, report.format()


@pytest.fixture
def fgvc_root(tmp_path):
    return make_toy_fgvc(str(tmp_path / 'fgvc'), datasets=['stanforddogs'])


def test_clean_fgvc(fgvc_root):
    report = check_fgvc(fgvc_root, datasets=['stanforddogs'])
    assert report.ok, report.format()
    assert [(s.split, s.listed, s.found)
            for s in report.splits] == [('train', 120, 120), ('val', 120, 120),
                                        ('test', 120, 120)]
    assert all(
        s.ann_file.startswith(osp.join(fgvc_root, 'StanfordDogs'))
        for s in report.splits)


def test_fgvc_problems(fgvc_root):
    ds_dir = osp.join(fgvc_root, 'StanfordDogs')
    with open(osp.join(ds_dir, 'val.json')) as f:
        val = json.load(f)
    val = {p: c for p, c in val.items() if c != 3}  # drop class id 3 ...
    val['class_000/train_00.jpg'] = 1  # ... and reuse a train image
    with open(osp.join(ds_dir, 'val.json'), 'w') as f:
        json.dump(val, f)
    for split in ('train', 'test'):  # id 3 gone everywhere: 119 classes
        with open(osp.join(ds_dir, f'{split}.json')) as f:
            content = {p: c for p, c in json.load(f).items() if c != 3}
        with open(osp.join(ds_dir, f'{split}.json'), 'w') as f:
            json.dump(content, f)
    os.remove(osp.join(ds_dir, 'Images', 'class_005', 'test_00.jpg'))
    report = check_fgvc(fgvc_root, datasets=['stanforddogs'])
    assert not report.ok
    assert any(
        'hold 119 distinct class ids; expected 120 for Stanford Dogs' in e
        for e in report.errors)
    assert any('1 images of \'stanforddogs\' are listed in both train.json '
               'and val.json' in e for e in report.errors)
    splits = by_split(report)
    assert splits['stanforddogs', 'train'].ok
    assert '1 of 119 images listed in' in \
        splits['stanforddogs', 'test'].problems[0]


def test_fgvc_missing_split_file_and_folder(fgvc_root):
    os.remove(osp.join(fgvc_root, 'StanfordDogs', 'test.json'))
    report = check_fgvc(fgvc_root, datasets=['stanforddogs', 'cub'])
    splits = by_split(report)
    assert 'test.json' in splits['stanforddogs', 'test'].problems[0]
    assert 'is missing' in splits['stanforddogs', 'test'].problems[0]
    assert any(
        osp.join(fgvc_root, 'CUB_200_2011') in e and "of 'cub'" in e
        for e in report.errors)
