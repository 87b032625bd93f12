"""torch >= 2.6 weights_only loading of Runner checkpoints (after
``import vapt_mm``), and that the allow-list stays narrow."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from engine_test_utils import make_runner
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

from vapt_mm.engine.checkpoint_loading import history_buffer_statistic


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory) -> str:
    """A checkpoint written by mmengine's Runner after one tiny epoch."""
    work_dir = tmp_path_factory.mktemp('ckpt_loading')
    make_runner(str(work_dir)).train()
    return str(work_dir / 'epoch_1.pth')


def test_runner_checkpoint_fails_without_vapt_mm(runner_checkpoint):
    # The trap this module fixes: plain torch refuses mmengine's checkpoint.
    code = ('import sys, torch\n'
            'try:\n'
            '    torch.load(sys.argv[1])\n'
            'except Exception as e:\n'
            '    print(type(e).__name__, e)\n'
            'else:\n'
            '    print("LOADED")\n')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', code, runner_checkpoint],
                         capture_output=True,
                         text=True,
                         env=env,
                         timeout=120).stdout
    if digit_version(torch.__version__) >= digit_version('2.6.0'):
        assert 'UnpicklingError' in out and 'HistoryBuffer' in out, out
    else:
        assert 'LOADED' in out, out


def test_runner_checkpoint_loads_weights_only(runner_checkpoint):
    checkpoint = torch.load(runner_checkpoint, weights_only=True)
    assert checkpoint['meta']['epoch'] == 1
    assert 'head.fc.weight' in checkpoint['state_dict']
    loss = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    # the restored buffer works like the one that was saved
    values, counts = loss.data
    assert len(values) == 2 and np.all(np.isfinite(values))
    assert loss.statistics('mean') == pytest.approx(values.mean())
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        runner_checkpoint) == []


def test_resume_and_load_from_work(runner_checkpoint, tmp_path):
    runner = make_runner(
        str(tmp_path / 'resumed'),
        max_epochs=2,
        load_from=runner_checkpoint,
        resume=True)
    runner.train()
    assert runner.epoch == 2 and runner.iter == 4
    runner = make_runner(
        str(tmp_path / 'loaded'), train=False, test=True,
        load_from=runner_checkpoint)
    assert runner.test() == dict(num_samples=6)


def test_plain_state_dict_loads_weights_only(tmp_path):
    state_dict = {'weight': torch.randn(3, 4), 'bias': torch.zeros(3)}
    torch.save(state_dict, tmp_path / 'plain.pth')
    loaded = torch.load(tmp_path / 'plain.pth', weights_only=True)
    assert loaded.keys() == state_dict.keys()
    assert all(torch.equal(loaded[k], state_dict[k]) for k in state_dict)


class _GetattrOn:
    """Pickles as ``getattr(owner, name)``."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('owner,name', [
    (HistoryBuffer, 'update'),
    (HistoryBuffer, '__init__'),
    (np.ndarray, 'tofile'),
])
def test_getattr_allowed_only_for_history_buffer_statistics(
        tmp_path, owner, name):
    torch.save({'x': _GetattrOn(owner, name)}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match=f"getattr.*'{name}'"):
        torch.load(tmp_path / 'evil.pth', weights_only=True)


def test_arbitrary_callables_stay_refused(tmp_path):

    class CallsSystem:

        def __reduce__(self):
            return os.system, ('echo pwned',)

    torch.save({'x': CallsSystem()}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(tmp_path / 'evil.pth', weights_only=True)


def test_history_buffer_statistic():
    assert history_buffer_statistic(HistoryBuffer, 'max') is HistoryBuffer.max
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        history_buffer_statistic(HistoryBuffer(), 'min')
