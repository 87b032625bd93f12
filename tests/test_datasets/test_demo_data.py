"""Tests for vapt_mm.datasets.demo_data (the embedded demo's digits)."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

pytest.importorskip(
    'sklearn', reason='the demo data come from scikit-learn (optional)')

from vapt_mm.datasets.demo_data import (  # noqa: E402
    balanced_splits, load_digits_arrays, write_demo_data)

SIZES = dict(train800=30, val200=10, test=20)
SPLIT_FILES = ('train800', 'val200', 'train800val200', 'test')


def read_list(task_dir, split):
    with open(osp.join(task_dir, f'{split}.txt'), encoding='utf-8') as f:
        return [line.rsplit(' ', 1) for line in f.read().splitlines()]


def test_layout_counts_and_labels(tmp_path):
    task_dir = write_demo_data(str(tmp_path), sizes=SIZES, img_size=28)
    assert task_dir == osp.join(str(tmp_path), 'digits')
    lists = {s: read_list(task_dir, s) for s in SPLIT_FILES}
    assert {s: len(v) for s, v in lists.items()} == dict(
        train800=30, val200=10, train800val200=40, test=20)
    assert lists['train800val200'] == lists['train800'] + lists['val200']
    # splits are disjoint
    paths = [p for s in ('train800', 'val200', 'test') for p, _ in lists[s]]
    assert len(set(paths)) == len(paths) == 60
    # balanced: 30 training images over 10 classes -> 3 each
    train_labels = [int(label) for _, label in lists['train800']]
    assert np.bincount(train_labels, minlength=10).tolist() == [3] * 10

    # every label is the scikit-learn label of the digit the file shows
    images, labels = load_digits_arrays()
    for path, label in lists['train800val200'] + lists['test']:
        index = int(osp.basename(path)[len('digit_'):-len('.png')])
        assert int(label) == labels[index]
        img = Image.open(osp.join(task_dir, path))
        assert img.mode == 'RGB' and img.size == (28, 28)
    # the picture is the digit, dark ink on white: shrunk back to 8 x 8 it
    # follows scikit-learn's pixels
    path, label = lists['test'][0]
    index = int(osp.basename(path)[len('digit_'):-len('.png')])
    img = np.asarray(Image.open(osp.join(task_dir, path)), np.float64)
    assert (img[..., 0] == img[..., 1]).all()  # grey in RGB
    small = np.asarray(
        Image.open(osp.join(task_dir, path)).convert('L').resize(
            (8, 8), Image.BOX), np.float64)
    expected = 255.0 * (1.0 - images[index] / 16.0)
    assert np.corrcoef(small.ravel(), expected.ravel())[0, 1] > 0.9


def test_idempotent_and_repairs(tmp_path):
    task_dir = write_demo_data(str(tmp_path), sizes=SIZES, img_size=16)
    listed = osp.join(task_dir, read_list(task_dir, 'test')[0][0])
    stamp = os.stat(listed).st_mtime_ns
    before = {
        s: open(osp.join(task_dir, f'{s}.txt')).read()
        for s in SPLIT_FILES
    }
    # present and complete: nothing is rewritten
    os.utime(listed, ns=(stamp - 10**9, stamp - 10**9))
    write_demo_data(str(tmp_path), sizes=SIZES, img_size=16)
    assert os.stat(listed).st_mtime_ns == stamp - 10**9
    # a missing image makes it incomplete: it is written again, same lists
    os.remove(listed)
    write_demo_data(str(tmp_path), sizes=SIZES, img_size=16)
    assert osp.isfile(listed)
    after = {
        s: open(osp.join(task_dir, f'{s}.txt')).read()
        for s in SPLIT_FILES
    }
    assert after == before
    with open(osp.join(task_dir, 'demo_data.json')) as f:
        manifest = json.load(f)
    assert manifest['sizes'] == SIZES and manifest['img_size'] == 16


def test_fixed_seed_and_other_seed(tmp_path):
    a = write_demo_data(str(tmp_path / 'a'), sizes=SIZES, img_size=16)
    b = write_demo_data(str(tmp_path / 'b'), sizes=SIZES, img_size=16)
    c = write_demo_data(
        str(tmp_path / 'c'), sizes=SIZES, img_size=16, seed=1)
    assert read_list(a, 'test') == read_list(b, 'test')
    assert read_list(a, 'test') != read_list(c, 'test')


def test_changed_sizes_rewrite_the_lists(tmp_path):
    task_dir = write_demo_data(str(tmp_path), sizes=SIZES, img_size=16)
    write_demo_data(
        str(tmp_path),
        sizes=dict(train800=20, val200=10, test=10),
        img_size=16)
    assert len(read_list(task_dir, 'train800')) == 20
    assert len(read_list(task_dir, 'test')) == 10


def test_loads_as_mmpretrain_custom_dataset(tmp_path):
    from mmpretrain.datasets import CustomDataset
    write_demo_data(str(tmp_path), sizes=SIZES, img_size=16)
    ds = CustomDataset(
        data_root=str(tmp_path),
        data_prefix='digits',
        ann_file='digits/val200.txt',
        pipeline=[dict(type='LoadImageFromFile')])
    assert len(ds) == 10
    sample = ds[0]
    assert sample['img'].shape == (16, 16, 3)
    assert sample['gt_label'] == int(read_list(
        osp.join(str(tmp_path), 'digits'), 'val200')[0][1])


@pytest.mark.parametrize('sizes, match', [
    (dict(train800=1000, val200=500, test=500), 'add up to 2000'),
    (dict(train800=0, val200=10, test=10), 'train800=0'),
    (dict(train800=10, val200=10), 'test=None'),
    (dict(train800=10, val200=10, test=10, extra=3), 'extra'),
])
def test_bad_sizes(tmp_path, sizes, match):
    with pytest.raises(ValueError, match=match):
        write_demo_data(str(tmp_path), sizes=sizes)


def test_bad_img_size_and_task(tmp_path):
    with pytest.raises(ValueError, match='img_size=4'):
        write_demo_data(str(tmp_path), sizes=SIZES, img_size=4)
    with pytest.raises(ValueError, match='plain folder name'):
        write_demo_data(str(tmp_path), task='a/b', sizes=SIZES)


def test_balanced_splits_uneven_sizes():
    labels = np.repeat(np.arange(10), 7)
    splits = balanced_splits(labels, dict(train800=25, val200=15, test=30),
                             seed=3)
    for split, idx in splits.items():
        counts = np.bincount(labels[idx], minlength=10)
        assert counts.max() - counts.min() <= 1, split
    assert not set(splits['train800']) & set(splits['test'])
