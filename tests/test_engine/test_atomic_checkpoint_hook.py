"""AtomicCheckpointHook: mmengine's CheckpointHook, written atomically and
rotated only after the new checkpoint is on disk."""
import contextlib
import glob
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from finite_loss_utils import toy_runner

import vapt_mm.engine.atomic_backend as atomic_backend
from vapt_mm.engine.atomic_backend import AtomicLocalBackend
from vapt_mm.engine.hooks import AtomicCheckpointHook


def _hook(runner) -> AtomicCheckpointHook:
    return next(h for h in runner.hooks
                if isinstance(h, AtomicCheckpointHook))


def _files(work_dir) -> list:
    return sorted(osp.basename(p) for p in glob.glob(osp.join(
        str(work_dir), '*.pth')) + glob.glob(osp.join(str(work_dir), '.*')))


def _epoch_of(path) -> int:
    # our own files, written a moment ago: a trusted full load
    return torch.load(str(path), weights_only=False)['meta']['epoch']


def test_same_checkpoints_as_mmengine_written_atomically(tmp_path):
    runner = toy_runner(
        str(tmp_path),
        max_epochs=3,
        checkpoint=dict(
            type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2))
    runner.train()
    assert isinstance(_hook(runner).file_backend, AtomicLocalBackend)
    assert _hook(runner).backend_args == dict(backend='atomic_local')
    # mmengine's names and rotation; no temporary file left behind
    assert _files(tmp_path) == ['epoch_2.pth', 'epoch_3.pth']
    assert [_epoch_of(tmp_path / f'epoch_{i}.pth') for i in (2, 3)] == [2, 3]
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read() == str(tmp_path / 'epoch_3.pth')
    assert runner.message_hub.get_info('keep_ckpt_ids') == [2, 3]


def test_resume_keeps_rotating(tmp_path):
    ckpt = dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2)
    toy_runner(str(tmp_path), max_epochs=2, checkpoint=ckpt).train()
    toy_runner(
        str(tmp_path), max_epochs=4, checkpoint=ckpt, resume=True).train()
    assert _files(tmp_path) == ['epoch_3.pth', 'epoch_4.pth']


@contextlib.contextmanager
def _fail_halfway_on_call(number: int):
    """atomic_write whose ``number``-th use writes half the bytes and then
    fails like a full disk (a kill mid-write leaves the same state)."""
    real = atomic_backend.atomic_write
    calls = []

    @contextlib.contextmanager
    def flaky(path, mode='wb'):
        calls.append(path)
        with real(path, mode) as f:
            if len(calls) != number:
                yield f
                return

            class HalfThenFail:

                def write(self, data):
                    f.write(data[:len(data) // 2])
                    f.flush()
                    raise OSError(28, 'No space left on device (simulated)')

            yield HalfThenFail()

    yield flaky


def test_save_interrupted_mid_write_leaves_previous_files(
        tmp_path, monkeypatch):
    with _fail_halfway_on_call(3) as flaky:
        monkeypatch.setattr(atomic_backend, 'atomic_write', flaky)
        runner = toy_runner(
            str(tmp_path),
            max_epochs=4,
            checkpoint=dict(
                type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2))
        with pytest.raises(OSError, match='No space left'):
            runner.train()
    # no epoch_3.pth, no half-written temporary file; epoch_1 was not
    # rotated out for a checkpoint that never came
    assert _files(tmp_path) == ['epoch_1.pth', 'epoch_2.pth']
    assert [_epoch_of(tmp_path / f'epoch_{i}.pth') for i in (1, 2)] == [1, 2]
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read() == str(tmp_path / 'epoch_2.pth')


KILLED_MID_WRITE = """
import contextlib, os, signal, sys
import vapt_mm.engine.atomic_backend as atomic_backend
real = atomic_backend.atomic_write

@contextlib.contextmanager
def killed(path, mode='wb'):
    with real(path, mode) as f:
        class HalfThenKill:
            def write(self, data):
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
        yield HalfThenKill()

atomic_backend.atomic_write = killed
atomic_backend.AtomicLocalBackend().put(b'new' * 100000, sys.argv[1])
"""


def test_kill_mid_write_then_next_run_cleans_up(tmp_path):
    """A real SIGKILL in the middle of a checkpoint write: the old file is
    intact, and the next run removes the temporary file the kill left."""
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old')
    script = tmp_path / 'killed.py'
    script.write_text(KILLED_MID_WRITE)
    proc = subprocess.run([sys.executable, str(script), str(target)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert target.read_bytes() == b'old'
    leftovers = [p for p in _files(tmp_path) if p.startswith('.epoch_1')]
    assert len(leftovers) == 1
    toy_runner(str(tmp_path), max_epochs=1).train()
    assert not (tmp_path / leftovers[0]).exists()


def test_stale_temporary_files_are_removed(tmp_path):
    stale = tmp_path / '.epoch_2.pth.k3j9x.tmp'
    stale.write_bytes(b'half a checkpoint')
    other = tmp_path / '.notes.tmp'
    other.write_text('not ours')
    toy_runner(str(tmp_path), max_epochs=1).train()
    assert not stale.exists()
    assert other.exists()


def test_explicit_backend_args_are_kept(tmp_path):
    runner = toy_runner(
        str(tmp_path),
        max_epochs=1,
        checkpoint=dict(
            type='AtomicCheckpointHook', backend_args=dict(backend='local')))
    runner.train()
    hook = _hook(runner)
    assert hook.backend_args == dict(backend='local')
    assert type(hook.file_backend) is not AtomicLocalBackend


def _best_files(work_dir) -> list:
    return sorted(
        osp.basename(p) for p in glob.glob(osp.join(str(work_dir), 'best_*')))


def _validate(runner, score: float, epoch: int) -> None:
    """What the validation loop does at the end of ``epoch``."""
    runner.train_loop._epoch = epoch
    _hook(runner).after_val_epoch(runner, dict(score=score))


def test_best_checkpoint_is_replaced_only_after_the_new_one_is_written(
        tmp_path, monkeypatch):
    ckpt = dict(type='AtomicCheckpointHook', interval=1, save_best='score',
                rule='greater')
    runner = toy_runner(str(tmp_path / 'ok'), max_epochs=1, checkpoint=ckpt)
    runner.train()
    _validate(runner, 1.0, epoch=1)
    assert _best_files(tmp_path / 'ok') == ['best_score_epoch_1.pth']
    _validate(runner, 2.0, epoch=2)  # better: replaces it
    assert _best_files(tmp_path / 'ok') == ['best_score_epoch_2.pth']
    _validate(runner, 3.0, epoch=2)  # better again under the same name
    assert _best_files(tmp_path / 'ok') == ['best_score_epoch_2.pth']

    # the save of a new best fails: the previous best stays
    runner = toy_runner(str(tmp_path / 'fail'), max_epochs=1,
                        checkpoint=ckpt)
    runner.train()
    _validate(runner, 1.0, epoch=1)
    real_save = runner.save_checkpoint

    def failing_save(out_dir, filename, *args, **kwargs):
        if filename.startswith('best_'):
            raise OSError(28, 'No space left on device (simulated)')
        return real_save(out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', failing_save)
    with pytest.raises(OSError, match='No space left'):
        _validate(runner, 2.0, epoch=2)
    assert _best_files(tmp_path / 'fail') == ['best_score_epoch_1.pth']
    assert _epoch_of(tmp_path / 'fail' / 'best_score_epoch_1.pth') == 1
