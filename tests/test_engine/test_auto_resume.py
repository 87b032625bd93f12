"""--resume without a path: the newest readable checkpoint, damaged ones
skipped with a warning naming them."""
import os
import os.path as osp

import pytest
import torch
from engine_test_utils import LogCapture
from finite_loss_utils import ITERS_PER_EPOCH, toy_runner
from mmengine.config import Config

from vapt_mm.engine.auto_resume import (checkpoint_candidates,
                                        find_resumable_checkpoint,
                                        resolve_auto_resume)
from vapt_mm.utils.user_errors import CheckpointError


def _truncate(path: str, size: int = 200) -> None:
    with open(path, 'rb') as f:
        data = f.read(size)
    with open(path, 'wb') as f:
        f.write(data)


def _set_mtimes(folder, names) -> None:
    """Give the files increasing modification times, in ``names`` order."""
    for i, name in enumerate(names):
        os.utime(osp.join(folder, name), (1_000_000 + i, 1_000_000 + i))


@pytest.fixture
def run_dir(tmp_path) -> str:
    """A finished 3-epoch toy run with epoch_1..3.pth and last_checkpoint."""
    work_dir = str(tmp_path / 'run')
    toy_runner(work_dir, max_epochs=3).train()
    return work_dir


def test_candidates_newest_first(run_dir):
    # an older run's leftover with a larger number, a temporary file of an
    # interrupted save and an unrelated file are not this run's newest
    old = osp.join(run_dir, 'epoch_9.pth')
    torch.save({}, old)
    for name in ('.epoch_4.pth.x1.tmp', 'best_loss_epoch_2.pth'):
        open(osp.join(run_dir, name), 'wb').close()
    _set_mtimes(run_dir, ['epoch_9.pth', 'epoch_1.pth', 'epoch_2.pth',
                          'epoch_3.pth'])
    assert [osp.basename(p) for p in checkpoint_candidates(run_dir)] == [
        'epoch_3.pth', 'epoch_2.pth', 'epoch_1.pth', 'epoch_9.pth'
    ]


def test_pointer_comes_first_even_when_relative(run_dir):
    _set_mtimes(run_dir, ['epoch_2.pth', 'epoch_3.pth', 'epoch_1.pth'])
    with open(osp.join(run_dir, 'last_checkpoint'), 'w') as f:
        f.write('some/other/cwd/epoch_2.pth')  # as another cwd saw it
    assert [osp.basename(p) for p in checkpoint_candidates(run_dir)] == [
        'epoch_2.pth', 'epoch_1.pth', 'epoch_3.pth'
    ]


def test_truncated_newest_is_skipped_with_a_warning(run_dir):
    newest = osp.join(run_dir, 'epoch_3.pth')
    _truncate(newest)
    with LogCapture() as log:
        found = find_resumable_checkpoint(run_dir)
    assert found == osp.join(run_dir, 'epoch_2.pth')
    assert f'Skipping the checkpoint {newest} for --resume: it is ' \
        'unreadable (truncated' in log.text
    # the Runner resumes from it and trains epoch 3 again
    cfg = Config(dict(resume=True, load_from=None, work_dir=run_dir))
    resolve_auto_resume(cfg)
    assert cfg.load_from == found and cfg.resume
    runner = toy_runner(run_dir, max_epochs=3, resume=True,
                        load_from=cfg.load_from)
    runner.train()
    assert runner.iter == 3 * ITERS_PER_EPOCH
    # our own file, written a moment ago: a trusted full load
    assert torch.load(newest, weights_only=False)['meta']['epoch'] == 3


def test_missing_or_empty_pointer_falls_back_to_the_files(run_dir):
    os.remove(osp.join(run_dir, 'epoch_3.pth'))  # the pointer's target
    with LogCapture() as log:
        assert find_resumable_checkpoint(run_dir) == osp.join(
            run_dir, 'epoch_2.pth')
    assert 'epoch_3.pth, which does not exist' in log.text
    open(osp.join(run_dir, 'last_checkpoint'), 'w').close()
    with LogCapture() as log:
        assert find_resumable_checkpoint(run_dir) == osp.join(
            run_dir, 'epoch_2.pth')
    assert 'last_checkpoint is empty' in log.text


def test_all_damaged_is_an_error_naming_them(run_dir):
    for i in (1, 2, 3):
        _truncate(osp.join(run_dir, f'epoch_{i}.pth'))
    with pytest.raises(CheckpointError) as info:
        find_resumable_checkpoint(run_dir)
    message = str(info.value)
    assert 'found 3 checkpoint(s) and none is readable' in message
    for i in (1, 2, 3):
        assert osp.join(run_dir, f'epoch_{i}.pth') in message


def test_no_checkpoint_trains_from_scratch(tmp_path):
    cfg = Config(dict(resume=True, load_from=None,
                      work_dir=str(tmp_path / 'new')))
    resolve_auto_resume(cfg)
    assert cfg.resume is False and cfg.load_from is None


def test_explicit_path_and_no_resume_are_left_alone(run_dir):
    explicit = Config(dict(resume=True, load_from='x.pth', work_dir=run_dir))
    resolve_auto_resume(explicit)
    assert explicit.load_from == 'x.pth'
    plain = Config(dict(resume=False, load_from=None, work_dir=run_dir))
    resolve_auto_resume(plain)
    assert plain.load_from is None and plain.resume is False
