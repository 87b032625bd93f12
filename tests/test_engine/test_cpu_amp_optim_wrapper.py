"""CPUAmpOptimWrapper (bf16 autocast on CPU) and amp_optim_wrapper_cfg."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from engine_test_utils import make_runner
from mmengine.hooks import Hook

from vapt_mm.engine.optim import CPUAmpOptimWrapper, amp_optim_wrapper_cfg


class RecordForward(Hook):
    """Records the head's output dtype, autocast state and the losses."""

    def __init__(self) -> None:
        self.dtypes, self.autocast, self.losses = [], [], []

    def before_train(self, runner) -> None:

        def record(module, args, output):
            self.dtypes.append(output.dtype)
            self.autocast.append(torch.is_autocast_enabled('cpu'))

        runner.model.head.fc.register_forward_hook(record)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.losses.append(float(outputs['loss'].detach()))


def test_training_runs_in_bf16(tmp_path):
    recorder = RecordForward()
    runner = make_runner(
        str(tmp_path),
        optim_wrapper=dict(
            type='CPUAmpOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        custom_hooks=[recorder],
        train_length=12)
    before = {
        n: p.detach().clone()
        for n, p in runner.model.named_parameters() if p.requires_grad
    }
    runner.train()
    assert isinstance(runner.optim_wrapper, CPUAmpOptimWrapper)
    assert recorder.dtypes == [torch.bfloat16] * 3
    assert recorder.autocast == [True] * 3
    assert len(recorder.losses) == 3
    assert all(math.isfinite(loss) for loss in recorder.losses)
    # master weights stay float32 and did train
    for name, param in runner.model.named_parameters():
        assert param.dtype == torch.float32, name
    assert any(not torch.equal(p, before[n])
               for n, p in runner.model.named_parameters() if n in before)
    checkpoint = torch.load(tmp_path / 'epoch_1.pth')
    assert checkpoint['meta']['epoch'] == 1
    assert 'loss_scaler' not in checkpoint['optimizer']
    # outside the optim context nothing is autocast
    assert not torch.is_autocast_enabled('cpu')


def _tiny_step_inputs():
    torch.manual_seed(0)
    model = nn.Linear(8, 3)
    batches = [(torch.randn(4, 8), torch.randint(0, 3, (4, )))
               for _ in range(2)]
    return model, batches


def test_gradient_accumulation_matches_manual_autocast():
    model, batches = _tiny_step_inputs()
    reference = copy.deepcopy(model)

    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 2)
    start = model.weight.detach().clone()
    for i, (x, y) in enumerate(batches):
        with wrapper.optim_context(model):
            loss = nn.functional.cross_entropy(model(x), y)
        wrapper.update_params(loss)
        if i == 0:  # accumulating: no step yet
            assert torch.equal(model.weight, start)

    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    for x, y in batches:
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(reference(x), y)
        (loss / 2).backward()
    ref_optimizer.step()
    assert not torch.equal(model.weight, start)
    assert torch.equal(model.weight, reference.weight)
    assert torch.equal(model.bias, reference.bias)


def test_float16_refused():
    with pytest.raises(ValueError, match='bfloat16.*float16'):
        CPUAmpOptimWrapper(
            dtype='float16',
            optimizer=torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1))


BASE = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
    clip_grad=dict(max_norm=1.0))


def test_cfg_on_cpu():
    cfg = amp_optim_wrapper_cfg(BASE, device='cpu')
    assert cfg == dict(BASE, type='CPUAmpOptimWrapper', dtype='bfloat16')
    assert 'type' not in BASE  # input untouched
    assert amp_optim_wrapper_cfg(BASE, 'bfloat16', 'cpu') == cfg
    gpu_cfg = dict(BASE, type='AmpOptimWrapper', loss_scale=512.)
    assert amp_optim_wrapper_cfg(gpu_cfg, device='cpu') == cfg
    with pytest.raises(ValueError, match='CPU supports bfloat16 only'):
        amp_optim_wrapper_cfg(BASE, 'float16', 'cpu')


def test_cfg_on_gpu():
    assert amp_optim_wrapper_cfg(BASE, device='cuda') == dict(
        BASE, type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')
    assert amp_optim_wrapper_cfg(BASE, 'bfloat16', 'cuda') == dict(
        BASE, type='AmpOptimWrapper', dtype='bfloat16')
    static = dict(BASE, loss_scale=512.)
    assert amp_optim_wrapper_cfg(static, device='cuda')['loss_scale'] == 512.


def test_cfg_default_device_is_this_machine():
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else \
        'CPUAmpOptimWrapper'
    assert amp_optim_wrapper_cfg(BASE)['type'] == expected


def test_cfg_errors():
    with pytest.raises(ValueError, match="'ApexOptimWrapper'"):
        amp_optim_wrapper_cfg(dict(BASE, type='ApexOptimWrapper'))
    with pytest.raises(ValueError, match="'fp8'"):
        amp_optim_wrapper_cfg(BASE, 'fp8', 'cpu')
    with pytest.raises(ValueError, match="'mps'"):
        amp_optim_wrapper_cfg(BASE, device='mps')
    with pytest.raises(TypeError, match='dict'):
        amp_optim_wrapper_cfg(['SGD'])
