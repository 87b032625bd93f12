"""Reading a run's state from the files mmengine writes (synthetic runs)."""
import json
import os
import os.path as osp

import pytest

from vapt_mm.protocol.run_state import (final_validation_score,
                                        last_checkpoint, run_status)
from vapt_mm.protocol.runs import grid_run


def make_run(tmp_path, max_epochs=2):
    return grid_run(str(tmp_path / 'sweep'), 'dtd', 10.0, 0.001, 42, 64,
                    ('train800', 'val200'), max_epochs,
                    options=['randomness.seed=42'])


def write_scalars(run_dir, stamp, records, tail=''):
    vis = osp.join(run_dir, stamp, 'vis_data')
    os.makedirs(vis, exist_ok=True)
    with open(osp.join(vis, 'scalars.json'), 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
        f.write(tail)


def write_checkpoint(run_dir, epoch, written_path=None):
    os.makedirs(run_dir, exist_ok=True)
    path = osp.join(run_dir, f'epoch_{epoch}.pth')
    with open(path, 'wb') as f:
        f.write(b'x')
    with open(osp.join(run_dir, 'last_checkpoint'), 'w') as f:
        f.write(written_path or path)
    return path


def train_line(step):
    return {'lr': 0.1, 'loss': 1.0, 'epoch': 1, 'iter': step, 'step': step}


def test_new_run(tmp_path):
    run = make_run(tmp_path)
    status = run_status(run)
    assert status.state == 'new' and status.score is None


def test_score_is_the_validation_after_the_last_epoch(tmp_path):
    run = make_run(tmp_path, max_epochs=2)
    write_scalars(run.work_dir, '20240101_000000', [
        train_line(1), {'accuracy/top1': 30.0, 'step': 1},
        train_line(2), {'accuracy/top1': 55.5, 'step': 2}
    ], tail='{"accuracy/top1": 99')  # a line cut short by a kill
    write_checkpoint(run.work_dir, 2)
    status = run_status(run)
    assert status.state == 'done' and status.score == 55.5
    # the finished marker is written and read back next time
    with open(osp.join(run.work_dir, 'sweep_result.json')) as f:
        stored = json.load(f)
    assert stored['score'] == 55.5
    assert stored['lr'] == pytest.approx(2.5)
    assert stored['source'] == osp.join('20240101_000000', 'vis_data',
                                        'scalars.json')
    os.remove(osp.join(run.work_dir, '20240101_000000', 'vis_data',
                       'scalars.json'))
    assert run_status(run).score == 55.5


def test_newest_log_dir_with_a_final_validation_wins(tmp_path):
    run = make_run(tmp_path, max_epochs=1)
    write_scalars(run.work_dir, '20240101_000000',
                  [{'accuracy/top1': 10.0, 'step': 1}])
    write_scalars(run.work_dir, '20240102_000000',
                  [{'accuracy/top1': 20.0, 'step': 1}])
    # a later start that died before validating
    write_scalars(run.work_dir, '20240103_000000', [train_line(1)])
    assert final_validation_score(run.work_dir, 1)[0] == 20.0
    assert final_validation_score(run.work_dir, 1, 'accuracy/top5') is None


def test_interrupted_run_is_resumed(tmp_path):
    run = make_run(tmp_path, max_epochs=2)
    write_scalars(run.work_dir, '20240101_000000',
                  [train_line(1), {'accuracy/top1': 30.0, 'step': 1}])
    ckpt = write_checkpoint(run.work_dir, 1)
    status = run_status(run)
    assert status.state == 'resume' and status.checkpoint == ckpt
    assert not osp.exists(osp.join(run.work_dir, 'sweep_result.json'))


def test_last_checkpoint_written_from_another_cwd(tmp_path):
    run = make_run(tmp_path)
    write_checkpoint(run.work_dir, 2, written_path='elsewhere/epoch_2.pth')
    path, epoch = last_checkpoint(run.work_dir)
    assert path == osp.join(run.work_dir, 'epoch_2.pth') and epoch == 2


def test_trained_run_without_final_validation_is_evaluated(tmp_path):
    run = make_run(tmp_path, max_epochs=2)
    write_scalars(run.work_dir, '20240101_000000', [train_line(2)])
    write_checkpoint(run.work_dir, 2)
    assert run_status(run).state == 'evaluate'
    with open(osp.join(run.work_dir, 'sweep_eval_metrics.json'), 'w') as f:
        json.dump({'accuracy/top1': 42.25}, f)
    status = run_status(run)
    assert status.state == 'done' and status.score == 42.25


def test_dry_reading_writes_nothing(tmp_path):
    run = make_run(tmp_path, max_epochs=1)
    write_scalars(run.work_dir, '20240101_000000',
                  [{'accuracy/top1': 10.0, 'step': 1}])
    assert run_status(run, record=False).score == 10.0
    assert not osp.exists(osp.join(run.work_dir, 'sweep_result.json'))


def test_result_of_other_settings_is_refused(tmp_path):
    run = make_run(tmp_path, max_epochs=1)
    write_scalars(run.work_dir, '20240101_000000',
                  [{'accuracy/top1': 10.0, 'step': 1}])
    run_status(run)
    # same folder name, but the batch size (hence the lr) changed
    other = grid_run(str(tmp_path / 'sweep'), 'dtd', 10.0, 0.001, 42, 128,
                     ('train800', 'val200'), 1)
    with pytest.raises(ValueError) as err:
        run_status(other)
    msg = str(err.value)
    assert 'sweep_result.json was written by a run with other settings' in msg
    assert 'lr: stored 2.5, planned 5.0' in msg
    assert other.work_dir in msg
