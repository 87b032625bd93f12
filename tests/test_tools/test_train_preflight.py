"""tools/train.py and tools/test.py on tiny configs with one mistake each.

Each mistake of the issue's list must end the run before the Runner starts
(no environment dump, no work dir) with exit code 1 and a short message
that names the file or value and a docs/errors.md section, without a
traceback; --debug / VAPT_MM_DEBUG=1 add the traceback, and programming
errors keep theirs.
"""
import os
import os.path as osp
import sys

import pytest
import torch
from test_train_helpers import (TINY_VIT, TOOLS_DIR, run, run_tool,
                                write_tiny_config, write_tiny_pretrained,
                                write_tiny_vtab1k)

RUNNER_DUMP = 'System environment'


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp('pretrained')
    return write_tiny_pretrained(str(folder / 'tiny_vit.pth'))


@pytest.fixture
def setup(tmp_path, pretrained):
    data_root = str(tmp_path / 'data')
    write_tiny_vtab1k(data_root)
    return dict(tmp=tmp_path, data_root=data_root, pretrained=pretrained)


def train(setup, *args, data_root=None, pretrained=None, env=None):
    config = write_tiny_config(
        str(setup['tmp'] / 'cfg.py'), data_root or setup['data_root'],
        pretrained or setup['pretrained'], max_epochs=1)
    work_dir = str(setup['tmp'] / 'work')
    proc = run_tool('train.py', [config, '--work-dir', work_dir, *args],
                    cwd=str(setup['tmp']), env=env)
    return proc, work_dir


def assert_user_error(proc, work_dir, tool, *expected):
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert f'{tool}: error:' in proc.stderr
    for text in expected:
        assert text in proc.stderr, (text, proc.stderr[-3000:])
    # it stopped before the Runner: no environment dump, no work dir
    assert RUNNER_DUMP not in proc.stdout + proc.stderr
    assert not osp.exists(work_dir)


def test_missing_data_root(setup):
    missing = str(setup['tmp'] / 'nowhere')
    proc, work_dir = train(setup, data_root=missing)
    assert_user_error(proc, work_dir, 'train.py',
                      f"VTAB-1k data root '{missing}' does not exist",
                      'docs/errors.md#data-root',
                      'config: train_dataloader.dataset')


def test_missing_data_root_with_debug_shows_the_traceback(setup):
    missing = str(setup['tmp'] / 'nowhere')
    proc, _ = train(setup, '--debug', data_root=missing)
    assert proc.returncode == 1
    assert 'Traceback' in proc.stderr
    assert 'MissingFileError' in proc.stderr
    assert f"train.py: error: VTAB-1k data root '{missing}'" in proc.stderr


def test_empty_annotation_file(setup):
    ann = osp.join(setup['data_root'], 'eurosat', 'train800val200.txt')
    open(ann, 'w').close()
    proc, work_dir = train(setup)
    assert_user_error(proc, work_dir, 'train.py',
                      f"Annotation file '{ann}' lists no images",
                      'docs/errors.md#empty-annotation-file')


def test_num_classes_smaller_than_the_labels(setup):
    # the tiny data use labels 0..3; line 4 of train800val200.txt has 3
    proc, work_dir = train(setup, '--cfg-options', 'model.head.num_classes=3')
    ann = osp.join(setup['data_root'], 'eurosat', 'train800val200.txt')
    assert_user_error(proc, work_dir, 'train.py', 'holds label 3',
                      f'{ann}, line 4', 'model.head.num_classes=3',
                      'docs/errors.md#label-range')


def test_in_channels_not_the_backbone_width(setup):
    proc, work_dir = train(setup, '--cfg-options',
                           'model.head.in_channels=32')
    assert_user_error(proc, work_dir, 'train.py',
                      'model.head.in_channels is 32',
                      'the backbone gives 64-wide features',
                      'set model.head.in_channels=64',
                      'docs/errors.md#in-channels')


def test_in_channels_with_the_debug_variable(setup):
    proc, _ = train(setup, '--cfg-options', 'model.head.in_channels=32',
                    env={'VAPT_MM_DEBUG': '1'})
    assert proc.returncode == 1
    assert 'Traceback' in proc.stderr
    assert 'ConfigError' in proc.stderr


def test_missing_pretrained_file(setup):
    absent = str(setup['tmp'] / 'absent.pth')
    proc, work_dir = train(setup, pretrained=absent)
    assert_user_error(proc, work_dir, 'train.py',
                      f"Pretrained checkpoint '{absent}' does not exist",
                      f"model.backbone.init_cfg.checkpoint='{absent}'",
                      'docs/errors.md#pretrained-missing')


def test_pretrained_file_that_does_not_fit(setup):
    from mmpretrain.registry import MODELS
    narrow = dict(TINY_VIT, arch=dict(TINY_VIT['arch'], embed_dims=32))
    path = str(setup['tmp'] / 'narrow.pth')
    torch.save(dict(state_dict=MODELS.build(narrow).state_dict()), path)
    proc, work_dir = train(setup, pretrained=path)
    assert_user_error(proc, work_dir, 'train.py',
                      f"Pretrained checkpoint '{path}' does not fit",
                      'cls_token: checkpoint (1, 1, 32), expected (1, 1, 64)',
                      'docs/errors.md#pretrained-mismatch')


def test_a_programming_error_keeps_its_traceback(setup):
    config = write_tiny_config(
        str(setup['tmp'] / 'cfg.py'), setup['data_root'],
        setup['pretrained'], max_epochs=1)
    script = (
        'import runpy, sys\n'
        'import vapt_mm.engine.preflight.preflight as preflight\n'
        'def broken(*args, **kwargs):\n'
        '    raise ZeroDivisionError("a bug")\n'
        'preflight._check_model = broken\n'
        f'sys.argv = ["train.py", {config!r}]\n'
        f'runpy.run_path({osp.join(TOOLS_DIR, "train.py")!r}, '
        'run_name="__main__")\n')
    proc = run([sys.executable, '-c', script], cwd=str(setup['tmp']))
    assert proc.returncode == 1
    assert 'Traceback' in proc.stderr
    assert 'ZeroDivisionError: a bug' in proc.stderr
    assert 'train.py: error:' not in proc.stderr


def test_errors_inside_the_runner_print_cleanly(setup):
    # the preflight reads no images: a missing one is found by the dataset
    # when the Runner builds it
    image = osp.join(setup['data_root'], 'eurosat', 'images', '005.png')
    os.remove(image)
    proc, _ = train(setup)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert 'train.py: error: 1 of 16 images listed' in proc.stderr
    assert image in proc.stderr
    assert 'docs/errors.md#missing-images' in proc.stderr


def test_test_py_checks_the_checkpoint_and_the_test_data(setup):
    config = write_tiny_config(
        str(setup['tmp'] / 'cfg.py'), setup['data_root'],
        setup['pretrained'], max_epochs=1)
    work_dir = str(setup['tmp'] / 'work')
    absent = str(setup['tmp'] / 'epoch_1.pth')
    proc = run_tool('test.py', [config, absent, '--work-dir', work_dir],
                    cwd=str(setup['tmp']))
    assert_user_error(proc, work_dir, 'test.py',
                      f'Checkpoint file {absent} does not exist',
                      'docs/errors.md#checkpoint-missing')

    ann = osp.join(setup['data_root'], 'eurosat', 'test.txt')
    open(ann, 'w').close()
    # any existing file passes the presence check; the preflight comes next
    proc = run_tool('test.py',
                    [config, setup['pretrained'], '--work-dir', work_dir],
                    cwd=str(setup['tmp']))
    assert_user_error(proc, work_dir, 'test.py',
                      f"Annotation file '{ann}' lists no images",
                      'config: test_dataloader.dataset')
