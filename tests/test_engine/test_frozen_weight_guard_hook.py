"""FrozenWeightGuardHook: raises when a frozen weight changes."""
import pytest
import torch
import torch.distributed as dist
from engine_test_utils import make_runner, tiny_model_cfg
from mmengine.hooks import Hook
from mmpretrain.registry import MODELS
from torch.nn.parallel import DistributedDataParallel

from vapt_mm.engine.hooks import FrozenWeightGuardHook
from vapt_mm.engine.hooks.frozen_weight_guard_hook import tensor_fingerprint

GUARD = dict(type='FrozenWeightGuardHook')


class TamperAtIter(Hook):
    """Changes a frozen parameter after the second training iteration."""

    def __init__(self, name: str, unfreeze: bool = False) -> None:
        self.name = name
        self.unfreeze = unfreeze

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter != 1:
            return
        param = dict(runner.model.named_parameters())[self.name]
        if self.unfreeze:
            param.requires_grad_(True)
        else:
            with torch.no_grad():
                param.add_(1)


def test_passes_when_nothing_changes(tmp_path):
    runner = make_runner(
        str(tmp_path), max_epochs=2, custom_hooks=[GUARD])
    runner.train()
    assert runner.epoch == 2
    guard = [h for h in runner.hooks if isinstance(h, FrozenWeightGuardHook)]
    assert len(guard[0]._fingerprints) == sum(
        not p.requires_grad for p in runner.model.parameters())


def test_raises_with_changed_parameter_name(tmp_path):
    runner = make_runner(
        str(tmp_path),
        custom_hooks=[GUARD, TamperAtIter('backbone.layers.0.ln1.weight')])
    with pytest.raises(RuntimeError) as info:
        runner.train()
    message = str(info.value)
    assert 'before_save_checkpoint' in message
    assert '1 changed: backbone.layers.0.ln1.weight' in message
    # the check ran before the corrupted backbone was written
    assert not (tmp_path / 'epoch_1.pth').exists()


def test_raises_when_parameter_becomes_trainable(tmp_path):
    runner = make_runner(
        str(tmp_path),
        custom_hooks=[
            dict(type='FrozenWeightGuardHook', check_on_save=False),
            TamperAtIter('backbone.pos_embed', unfreeze=True)
        ])
    with pytest.raises(RuntimeError) as info:
        runner.train()
    message = str(info.value)
    assert 'after_train' in message
    assert '1 became trainable: backbone.pos_embed' in message
    assert 'changed' not in message


def test_lists_first_names_and_count():
    model = MODELS.build(tiny_model_cfg())

    class FakeRunner:
        pass

    runner = FakeRunner()
    runner.model = model
    guard = FrozenWeightGuardHook()
    guard.before_train(runner)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    with torch.no_grad():
        for param in model.backbone.parameters():
            param.mul_(2).add_(1)
    with pytest.raises(RuntimeError) as info:
        guard.after_train(runner)
    message = str(info.value)
    assert f'{len(frozen)} changed: ' in message
    assert f'and {len(frozen) - 5} more' in message


def test_fingerprint_is_exact():
    t = torch.randn(100)
    nudged = t.clone()
    nudged[37] = torch.nextafter(nudged[37], torch.tensor(10.))
    assert tensor_fingerprint(t) == tensor_fingerprint(t.clone())
    assert tensor_fingerprint(t) != tensor_fingerprint(nudged)
    assert tensor_fingerprint(t) != tensor_fingerprint(t.double())
    assert tensor_fingerprint(t) != tensor_fingerprint(t.view(10, 10))
    assert tensor_fingerprint(torch.zeros(0)) == tensor_fingerprint(
        torch.zeros(0))
    bf16 = torch.randn(4, 4).bfloat16()
    assert tensor_fingerprint(bf16) == tensor_fingerprint(bf16.clone())


@pytest.fixture
def gloo_group(tmp_path):
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_under_ddp(gloo_group):
    model = MODELS.build(tiny_model_cfg())
    ddp = DistributedDataParallel(model, device_ids=None)

    class FakeRunner:
        pass

    runner = FakeRunner()
    runner.model = ddp
    guard = FrozenWeightGuardHook()
    guard.before_train(runner)
    # names are those of the unwrapped model
    assert 'backbone.cls_token' in guard._fingerprints
    guard.check(ddp)
    with torch.no_grad():
        ddp.module.backbone.cls_token.add_(1)
    with pytest.raises(RuntimeError, match='changed: backbone.cls_token'):
        guard.before_save_checkpoint(runner, {})
