"""tools/train.py and tools/test.py: a diverging run stops with a clear
error and only finite checkpoints; damaged checkpoints are named; --resume
skips a damaged newest checkpoint."""
import glob
import json
import os.path as osp
import shutil

import pytest
import torch
from test_train_helpers import (assert_ok, run_tool, write_tiny_config,
                                write_tiny_pretrained, write_tiny_vtab1k)

from vapt_mm.engine.hooks.finite_loss_hook import non_finite_entries

# SGD with weight decay multiplies the weights by (1 - lr * wd) every step:
# at lr 1e6 and wd 1e-3 that is -999, so they overflow float32 within a few
# iterations (the behaviour the issue reported: NaN from iteration 3 on).
# The rate is used as written (no auto_scale_lr) and held constant.
LR_1E6 = """
auto_scale_lr = dict(base_batch_size=256, enable=False)
optim_wrapper = dict(optimizer=dict(lr=1e6, weight_decay=1e-3))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True,
                        begin=0, end=100)]
"""

# lr 0.01 for 4 epochs, then 1e6 from epoch 5 on
LATE_DIVERGENCE = """
auto_scale_lr = dict(base_batch_size=256, enable=False)
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=1e-3))
param_scheduler = [dict(type='MultiStepLR', milestones=[4], gamma=1e8,
                        by_epoch=True, begin=0, end=100)]
"""


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('divergence')
    data_root = str(root / 'vtab-1k')
    write_tiny_vtab1k(data_root)
    return dict(
        root=root,
        data_root=data_root,
        pretrained=write_tiny_pretrained(str(root / 'vit.pth')))


@pytest.fixture(scope='module')
def trained(data) -> dict:
    """A 2-epoch run of the tiny config: epoch_1.pth, epoch_2.pth."""
    config = write_tiny_config(
        str(data['root'] / 'tiny.py'), data['data_root'], data['pretrained'],
        neck='vpt-deep', max_epochs=2)
    work_dir = str(data['root'] / 'trained')
    assert_ok(run_tool('train.py', [config, '--work-dir', work_dir],
                       cwd=str(data['root'])))
    return dict(config=config, work_dir=work_dir)


def _checkpoints(work_dir: str) -> list:
    """The .pth files of a work dir, each checked to hold finite tensors."""
    names = []
    for path in sorted(glob.glob(osp.join(work_dir, '*.pth'))):
        # our own files, written by the test's run: a trusted full load
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
        bad = non_finite_entries(
            dict(state_dict=ckpt['state_dict'], optimizer=ckpt['optimizer']))
        assert not bad, (path, bad)
        names.append(osp.basename(path))
    return names


def _assert_user_error(proc, *expected: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-6000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-6000:]
    for text in expected:
        assert text in proc.stderr, (text, proc.stderr[-6000:])


def _truncate_copy(src: str, dst: str) -> str:
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:len(data) // 2])
    return dst


def test_lr_1e6_stops_with_an_error_and_no_checkpoint(data, tmp_path):
    config = write_tiny_config(
        str(tmp_path / 'lr1e6.py'), data['data_root'], data['pretrained'],
        batch_size=2, max_epochs=2, extra=LR_1E6)
    work_dir = str(tmp_path / 'work')
    proc = run_tool('train.py', [config, '--work-dir', work_dir],
                    cwd=str(tmp_path))
    _assert_user_error(proc, 'train.py: error: training diverged',
                       'at epoch 1, iteration ', 'learning rate 1e+06',
                       'optim_wrapper.optimizer.lr',
                       'docs/training.md#diverging-runs')
    # stopped in epoch 1 (8 iterations): nothing diverged was saved
    assert _checkpoints(work_dir) == []
    # the record the VTAB-1k/FGVC sweep reads (a finished, losing run)
    with open(osp.join(work_dir, 'diverged.json')) as f:
        record = json.load(f)
    assert record['epoch'] == 0 and record['lr'] == '1e+06', record
    assert 'training diverged' in record['message']


def test_late_divergence_keeps_the_last_good_checkpoints(data, tmp_path):
    config = write_tiny_config(
        str(tmp_path / 'late.py'), data['data_root'], data['pretrained'],
        batch_size=2, max_epochs=6, extra=LATE_DIVERGENCE)
    work_dir = str(tmp_path / 'work')
    proc = run_tool('train.py', [config, '--work-dir', work_dir],
                    cwd=str(tmp_path))
    _assert_user_error(proc, 'training diverged',
                       'at epoch 5, iteration ', 'learning rate 1e+06',
                       'the last checkpoint written is')
    # max_keep_ckpts=3 (default_runtime): the three newest good ones stay
    assert _checkpoints(work_dir) == [
        'epoch_2.pth', 'epoch_3.pth', 'epoch_4.pth'
    ]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().endswith('epoch_4.pth')


def test_truncated_checkpoint_is_named_by_test_and_train(trained, tmp_path):
    cut = _truncate_copy(
        osp.join(trained['work_dir'], 'epoch_2.pth'),
        str(tmp_path / 'cut.pth'))
    expected = ('error: the checkpoint file is unreadable: truncated',
                f'where: {cut}')
    proc = run_tool('test.py', [trained['config'], cut, '--work-dir',
                                str(tmp_path / 'test')], cwd=str(tmp_path))
    _assert_user_error(proc, *expected)
    proc = run_tool('train.py', [trained['config'], '--resume', cut,
                                 '--work-dir', str(tmp_path / 'resume')],
                    cwd=str(tmp_path))
    _assert_user_error(proc, *expected)


def test_resume_auto_skips_a_truncated_newest_checkpoint(trained, tmp_path):
    work_dir = str(tmp_path / 'work')
    shutil.copytree(trained['work_dir'], work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'epoch_2.pth'))
    newest = osp.join(work_dir, 'epoch_2.pth')
    _truncate_copy(newest, newest)
    proc = run_tool('train.py', [
        trained['config'], '--work-dir', work_dir, '--resume',
        '--cfg-options', 'train_cfg.max_epochs=3'
    ], cwd=str(tmp_path))
    assert_ok(proc)
    out = proc.stdout + proc.stderr
    assert f'Skipping the checkpoint {newest} for --resume: it is ' \
        'unreadable (truncated' in out
    assert 'resumed epoch: 1' in out
    # epochs 2 and 3 were trained again; epoch_2.pth is whole again
    assert _checkpoints(work_dir) == [
        'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth'
    ]
