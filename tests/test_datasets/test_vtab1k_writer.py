"""write_vtab1k_task: the VTAB-1k layout the toy data and the demo's digits
share, and list files that survive an interrupted rewrite."""
import os
import os.path as osp

import numpy as np
import pytest
from interrupted_writes import SimulatedWriteError, failing_fsync, snapshot
from PIL import Image

from vapt_mm.datasets import VTAB1k, make_toy_vtab1k
from vapt_mm.datasets.vtab1k_writer import (vtab1k_list_lines,
                                            write_vtab1k_task)


def grey(value):
    return Image.fromarray(np.full((8, 8, 3), value, np.uint8))


SAMPLES = dict(
    train800=[('images/a.png', 0), ('images/b.png', 1)],
    val200=[('images/c.png', 1)],
    test=[('images/sub/d.png', 0)])


def test_layout_images_and_lists(tmp_path):
    drawn = []

    def draw(split, i):
        drawn.append((split, i))
        return grey(10 * len(drawn))

    task_dir = str(tmp_path / 'vtab-1k' / 'eurosat')
    lines = write_vtab1k_task(task_dir, SAMPLES, draw)
    # drawn in list order, each image once
    assert drawn == [('train800', 0), ('train800', 1), ('val200', 0),
                     ('test', 0)]
    expected = dict(
        train800=['images/a.png 0', 'images/b.png 1'],
        val200=['images/c.png 1'],
        train800val200=['images/a.png 0', 'images/b.png 1', 'images/c.png 1'],
        test=['images/sub/d.png 0'])
    assert lines == expected
    for split, split_lines in expected.items():
        with open(osp.join(task_dir, f'{split}.txt')) as f:
            assert f.read() == ''.join(f'{line}\n' for line in split_lines)
    pixel = np.asarray(Image.open(osp.join(task_dir, 'images/b.png')))
    assert (pixel == 20).all()
    # what VTAB1k reads back
    data = VTAB1k(
        data_root=str(tmp_path / 'vtab-1k'), task='eurosat',
        split='train800val200')
    assert [int(data.get_data_info(i)['gt_label'])
            for i in range(len(data))] == [0, 1, 1]

    with pytest.raises(KeyError, match=r"\['test'\]"):
        vtab1k_list_lines(dict(train800=[], val200=[]))


def test_toy_data_lists_are_the_shared_layout(tmp_path):
    make_toy_vtab1k(str(tmp_path), tasks=['dtd'],
                    sizes=dict(train800=50, val200=3, test=2), ext='jpg')
    # labels cycle through dtd's 47 classes in every split
    samples = {
        split: [(f'images/{split}/{i:05d}.jpg', i % 47) for i in range(n)]
        for split, n in (('train800', 50), ('val200', 3), ('test', 2))
    }
    for split, lines in vtab1k_list_lines(samples).items():
        with open(osp.join(tmp_path, 'dtd', f'{split}.txt')) as f:
            assert f.read().splitlines() == lines


def test_interrupted_rewrite_keeps_the_old_lists(tmp_path, monkeypatch):
    task_dir = str(tmp_path / 'tiny')
    write_vtab1k_task(task_dir, SAMPLES, lambda split, i: grey(0))
    before = snapshot(task_dir)
    relabelled = {s: [(p, 1 - y) for p, y in v] for s, v in SAMPLES.items()}

    monkeypatch.setattr(os, 'fsync', failing_fsync)
    with pytest.raises(SimulatedWriteError):
        write_vtab1k_task(task_dir, relabelled, lambda split, i: grey(0))
    assert snapshot(task_dir) == before
