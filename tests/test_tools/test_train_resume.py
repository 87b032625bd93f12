"""Interrupt tools/train.py after epoch 1 of 3, resume with --resume and
compare with an uninterrupted run."""
import os.path as osp

import torch
from test_train_helpers import (assert_ok, load_state_dict, read_json_logs,
                                run_tool, write_tiny_config,
                                write_tiny_pretrained, write_tiny_vtab1k)

STOP_HOOK = '''
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class StopAfterEpochHook(Hook):
    """Crash the run once the checkpoint of `epoch` is written."""

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW)

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            raise RuntimeError(f'simulated crash after epoch {self.epoch}')
'''


def test_resume_auto_equals_uninterrupted_run(tmp_path):
    data_root = str(tmp_path / 'vtab-1k')
    write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(tmp_path / 'vit.pth'))
    # shuffled data (the sampler's order depends on seed and epoch) and a
    # cosine lr over 3 epochs: resuming must restore both positions
    config = write_tiny_config(
        str(tmp_path / 'tiny.py'), data_root, pretrained, neck='vpt-deep',
        max_epochs=3, shuffle=True)
    (tmp_path / 'stop_hook.py').write_text(STOP_HOOK)
    stop_config = tmp_path / 'tiny_stop.py'
    stop_config.write_text(
        "_base_ = ['tiny.py']\n"
        "custom_imports = dict(imports=['vapt_mm', 'stop_hook'], "
        'allow_failed_imports=False)\n'
        'custom_hooks = _base_.custom_hooks + '
        "[dict(type='StopAfterEpochHook', epoch=1)]\n")
    cwd = str(tmp_path)

    full_dir = str(tmp_path / 'full')
    assert_ok(run_tool('train.py', [config, '--work-dir', full_dir], cwd))

    work_dir = str(tmp_path / 'resumed')
    crashed = run_tool('train.py', [str(stop_config), '--work-dir', work_dir],
                       cwd)
    assert crashed.returncode != 0
    assert 'simulated crash after epoch 1' in crashed.stderr
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))

    resumed = run_tool('train.py', [config, '--work-dir', work_dir,
                                    '--resume'], cwd)
    assert_ok(resumed)
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr
    # the resumed run trained epochs 2 and 3 only; each run logs into its
    # own <timestamp> folder, the resumed one is the newer
    runs = sorted(p for p in (tmp_path / 'resumed').iterdir() if p.is_dir())
    assert len(runs) == 2
    trained = [{
        r['epoch']
        for r in read_json_logs(str(run_dir)) if 'loss' in r
    } for run_dir in runs]
    assert trained == [{1}, {2, 3}]

    full = load_state_dict(osp.join(full_dir, 'epoch_3.pth'))
    again = load_state_dict(osp.join(work_dir, 'epoch_3.pth'))
    assert sorted(full) == sorted(again)
    # Same machine, same thread count, same operations in the same order:
    # CPU float32 is deterministic here, so the weights are bit-identical.
    for key in full:
        assert torch.equal(full[key], again[key]), key
