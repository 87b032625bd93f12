"""FiniteLossHook: a diverging run stops before a non-finite checkpoint is
written; the fp16 AMP rule tolerates a few loss-scaler skips only."""
import glob
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from engine_test_utils import LogCapture, make_runner
from finite_loss_utils import ITERS_PER_EPOCH, ToyRegressor, toy_runner
from mmengine.hooks import Hook

from vapt_mm.engine.hooks import FiniteLossHook, TrainingDivergedError
from vapt_mm.engine.hooks.finite_loss_hook import (dynamic_fp16_loss_scaler,
                                                   non_finite_entries)
from vapt_mm.utils.user_errors import UserError


def _load(path: str) -> dict:
    # our own files, written a moment ago: a trusted full load
    return torch.load(path, map_location='cpu', weights_only=False)


def _assert_all_finite(work_dir: str) -> list:
    paths = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    for path in paths:
        ckpt = _load(path)
        bad = non_finite_entries(
            dict(state_dict=ckpt['state_dict'], optimizer=ckpt['optimizer']))
        assert not bad, (path, bad)
    return [osp.basename(p) for p in paths]


def test_lr_1e6_stops_naming_epoch_iteration_lr(tmp_path):
    # SGD with weight decay multiplies the weights by (1 - lr * wd) = -999
    # every step: they overflow float32 within a few iterations.
    runner = make_runner(
        str(tmp_path),
        max_epochs=1,
        train_length=40,
        custom_hooks=[dict(type='FiniteLossHook')],
        optim_wrapper=dict(optimizer=dict(
            type='SGD', lr=1e6, momentum=0.9, weight_decay=1e-3)))
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert isinstance(info.value, RuntimeError)
    assert message.startswith('training diverged')
    assert f'epoch 1, iteration {runner.iter + 1} of 10' in message
    assert 'learning rate 1e+06' in message
    assert 'optim_wrapper.optimizer.lr' in message  # the fix
    assert 'docs/training.md#diverging-runs' in message
    # it stopped inside epoch 1: no checkpoint of the diverged state
    assert runner.iter < 10
    assert not glob.glob(str(tmp_path / '*.pth'))


def test_healthy_run_is_untouched(tmp_path):
    runner = toy_runner(str(tmp_path))
    runner.train()
    assert runner.iter == 3 * ITERS_PER_EPOCH
    assert _assert_all_finite(str(tmp_path)) == [
        'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth'
    ]


def test_late_divergence_keeps_the_good_checkpoints(tmp_path):
    # iteration 14 is the 2nd of epoch 4: the loss is inf, the gradients
    # NaN, and SGD writes NaN into the weights
    model = ToyRegressor(nonfinite_at={3 * ITERS_PER_EPOCH + 2})
    runner = toy_runner(
        str(tmp_path),
        model=model,
        max_epochs=6,
        checkpoint=dict(
            type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    message = str(info.value)
    assert 'epoch 4, iteration 2 of 4 (iteration 14 overall)' in message
    assert 'learning rate 0.05' in message
    assert 'linear.weight' in message
    assert 'last checkpoint written is' in message
    assert 'epoch_3.pth' in message
    assert _assert_all_finite(str(tmp_path)) == [
        'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth'
    ]
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read().endswith('epoch_3.pth')


def test_iteration_based_training(tmp_path):
    model = ToyRegressor(nonfinite_at={7})
    runner = toy_runner(
        str(tmp_path),
        model=model,
        max_iters=10,
        checkpoint=dict(
            type='AtomicCheckpointHook', by_epoch=False, interval=2))
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    assert 'at iteration 7 of 10, learning rate 0.05' in str(info.value)
    # the checkpoint of iteration 6 is the last; nothing after it
    assert _assert_all_finite(str(tmp_path)) == [
        'iter_2.pth', 'iter_4.pth', 'iter_6.pth'
    ]


class PoisonWeightsAfterEpoch(Hook):
    """Writes NaN into the weights after the loss check of the last
    iteration of epoch ``epoch`` and before the checkpoint is saved."""

    priority = 'NORMAL'  # after_train_epoch: before CheckpointHook

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epoch:
            with torch.no_grad():
                runner.model.linear.bias.fill_(float('inf'))


def test_refuses_to_write_a_non_finite_checkpoint(tmp_path):
    runner = toy_runner(
        str(tmp_path),
        max_epochs=4,
        checkpoint=dict(
            type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2),
        custom_hooks=[PoisonWeightsAfterEpoch(3)])
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    message = str(info.value)
    assert 'refusing to write the checkpoint of epoch 3' in message
    assert 'state_dict.linear.bias' in message
    # the refused save rotated nothing out
    assert _assert_all_finite(str(tmp_path)) == ['epoch_1.pth', 'epoch_2.pth']


def test_check_checkpoints_false_lets_the_save_through(tmp_path):
    runner = toy_runner(
        str(tmp_path),
        max_epochs=3,
        finite_loss=dict(type='FiniteLossHook', check_checkpoints=False),
        custom_hooks=[PoisonWeightsAfterEpoch(3)])
    runner.train()
    bias = _load(str(tmp_path / 'epoch_3.pth'))['state_dict']['linear.bias']
    assert torch.isinf(bias).all()


# --- mixed precision: the fp16 loss-scaler rule --------------------------

def test_amp_fp16_tolerates_skipped_steps_up_to_the_limit(tmp_path):
    model = ToyRegressor(nonfinite_at={3, 4, 5})
    runner = toy_runner(str(tmp_path), model=model, amp=torch.float16)
    scaler = runner.optim_wrapper.loss_scaler
    with LogCapture() as log:
        runner.train()
    assert runner.iter == 3 * ITERS_PER_EPOCH
    # each tolerated iteration was a skipped step: the scale halved 3 times
    assert scaler.get_scale() == 2.0**16 / 8
    assert log.text.count('the fp16 loss scaler skipped the step') == 3
    assert 'Tolerated 3 of 3 iterations in a row' in log.text
    assert _assert_all_finite(str(tmp_path)) == [
        'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth'
    ]


def test_amp_fp16_counter_resets_after_a_finite_iteration(tmp_path):
    # 3 + 3 non-finite iterations with a finite one between them
    model = ToyRegressor(nonfinite_at={2, 3, 4, 6, 7, 8})
    runner = toy_runner(str(tmp_path), model=model, amp=torch.float16)
    runner.train()
    assert runner.iter == 3 * ITERS_PER_EPOCH


def test_amp_fp16_stops_after_too_many_in_a_row(tmp_path):
    model = ToyRegressor(nonfinite_at={3, 4, 5, 6, 7})
    runner = toy_runner(str(tmp_path), model=model, amp=torch.float16)
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    message = str(info.value)
    # the 4th non-finite loss in a row: iteration 6 = epoch 2, iteration 2
    assert 'the loss is inf at epoch 2, iteration 2 of 4' in message
    assert 'after 3 iterations in a row the fp16 loss scaler' in message
    assert '--amp-dtype bfloat16' in message
    assert _assert_all_finite(str(tmp_path)) == ['epoch_1.pth']


@pytest.mark.parametrize('amp,hook', [
    (None, dict(type='FiniteLossHook')),
    (torch.bfloat16, dict(type='FiniteLossHook')),
    (torch.float16, dict(type='FiniteLossHook', max_amp_skipped_iters=0)),
])
def test_no_tolerance_without_a_dynamic_fp16_scaler(tmp_path, amp, hook):
    model = ToyRegressor(nonfinite_at={3})
    runner = toy_runner(
        str(tmp_path), model=model, amp=amp, finite_loss=hook)
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    assert 'epoch 1, iteration 3 of 4' in str(info.value)


def test_amp_fp16_weights_non_finite_are_never_tolerated(tmp_path):
    model = ToyRegressor(nonfinite_at={3}, corrupt_at={3})
    runner = toy_runner(str(tmp_path), model=model, amp=torch.float16)
    with pytest.raises(TrainingDivergedError) as info:
        runner.train()
    message = str(info.value)
    assert 'trainable weights became NaN or infinite at epoch 1, ' \
        'iteration 3' in message
    assert 'parameters linear.weight' in message


def test_dynamic_fp16_loss_scaler_detection():
    from finite_loss_utils import CPUFp16AmpStandIn
    from mmengine.optim import OptimWrapper, OptimWrapperDict
    layer = torch.nn.Linear(2, 2)

    def sgd():
        return torch.optim.SGD(layer.parameters(), lr=0.1)

    fp16 = CPUFp16AmpStandIn(dtype=torch.float16, optimizer=sgd())
    assert dynamic_fp16_loss_scaler(fp16) is fp16.loss_scaler
    bf16 = CPUFp16AmpStandIn(dtype=torch.bfloat16, optimizer=sgd())
    assert dynamic_fp16_loss_scaler(bf16) is None
    assert dynamic_fp16_loss_scaler(OptimWrapper(sgd())) is None
    disabled = CPUFp16AmpStandIn(dtype=torch.float16, optimizer=sgd())
    disabled.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
    assert dynamic_fp16_loss_scaler(disabled) is None
    both = OptimWrapperDict(a=OptimWrapper(sgd()), b=fp16)
    assert dynamic_fp16_loss_scaler(both) is fp16.loss_scaler


def test_arguments_are_validated():
    with pytest.raises(TypeError, match='max_amp_skipped_iters'):
        FiniteLossHook(max_amp_skipped_iters=-1)
    with pytest.raises(TypeError, match='check_checkpoints'):
        FiniteLossHook(check_checkpoints='yes')


# --- distributed: every process stops at the same iteration ---------------

DIST_SCRIPT = '''
import sys
from types import SimpleNamespace

import torch
import torch.distributed as dist
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from vapt_mm.engine.hooks import FiniteLossHook, TrainingDivergedError

sys.path.insert(0, {tests!r})
from finite_loss_utils import CPUFp16AmpStandIn

dist.init_process_group('gloo')
rank = dist.get_rank()
layer = torch.nn.Linear(2, 2)
optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
amp = {amp!r}
wrapper = (CPUFp16AmpStandIn(optimizer=optimizer) if amp else
           OptimWrapper(optimizer))
runner = SimpleNamespace(
    model=layer, optim_wrapper=wrapper, epoch=0, iter=0, train_loop=None,
    max_iters=10, message_hub=MessageHub.get_current_instance())
hook = FiniteLossHook()
# only rank 1 sees non-finite losses, from iteration 3 on
for it in range(10):
    runner.iter = it
    bad = rank == 1 and it >= 2
    loss = torch.tensor(float('nan') if bad else 0.5)
    try:
        hook.after_train_iter(runner, it, outputs=dict(loss=loss))
    except TrainingDivergedError as err:
        print(f'rank {{rank}} stopped at iteration {{it + 1}}: '
              + str(err).splitlines()[0], flush=True)
        break
    # what DDP does every iteration: a collective all ranks must join
    dist.all_reduce(torch.ones(1))
else:
    print(f'rank {{rank}} finished', flush=True)
dist.destroy_process_group()
'''


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_processes_stop_together(tmp_path):
    """A non-finite loss on rank 1 only, under the fp16 rule: both ranks
    tolerate the same 3 iterations and stop at the same one, instead of
    rank 1 stopping alone and rank 0 waiting forever in the next collective
    (without the rule they stop together at iteration 3 the same way)."""
    amp, stop_at = True, 6
    script = tmp_path / 'dist_finite.py'
    tests_dir = osp.dirname(osp.abspath(__file__))
    script.write_text(textwrap.dedent(DIST_SCRIPT).format(
        tests=tests_dir, amp=amp))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [osp.dirname(osp.dirname(tests_dir)),
         env.get('PYTHONPATH', '')])
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        '2', '--master_port', str(_free_port()), str(script)
    ],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for rank in (0, 1):
        assert f'rank {rank} stopped at iteration {stop_at}: training ' \
            'diverged:' in out, out[-4000:]
    assert 'the loss is non-finite on 1 of 2 processes' in out
    assert 'finished' not in out
