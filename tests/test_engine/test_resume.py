"""Resume after an interruption ends where an uninterrupted run ends
(torch >= 2.6 weights_only loading, no environment variables)."""
import os

import pytest
import torch
from engine_test_utils import (Interrupted, StopAfterEpoch, make_runner,
                               tiny_model_cfg)

EPOCHS = 3


def _final_state(runner):
    return {
        key: value.detach().clone()
        for key, value in runner.model.state_dict().items()
    }


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, pretrained_backbone):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    runner = make_runner(
        str(work_dir),
        model=tiny_model_cfg(pretrained_backbone),
        max_epochs=EPOCHS)
    runner.train()
    return _final_state(runner)


# (checkpoints written trainable-only, TrainableCheckpointHook in the config
# that resumes): the model completes a trainable-only checkpoint itself, so
# resuming does not need the hook.
@pytest.mark.parametrize('trainable_only,hook_on_resume',
                         [(False, False), (True, True), (True, False)])
def test_resume_matches_uninterrupted_run(tmp_path, pretrained_backbone,
                                          uninterrupted, trainable_only,
                                          hook_on_resume):
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    hooks = [dict(type='TrainableCheckpointHook')] if trainable_only else []
    model = tiny_model_cfg(pretrained_backbone)
    first = make_runner(
        str(tmp_path),
        model=model,
        max_epochs=EPOCHS,
        custom_hooks=hooks + [StopAfterEpoch(1)])
    with pytest.raises(Interrupted):
        first.train()
    checkpoint = torch.load(tmp_path / 'epoch_1.pth')
    assert checkpoint['meta'].get('trainable_only', False) is trainable_only
    assert not (tmp_path / 'epoch_2.pth').exists()

    resumed = make_runner(
        str(tmp_path),
        model=model,
        max_epochs=EPOCHS,
        custom_hooks=hooks if hook_on_resume else [],
        resume=True)
    resumed.train()
    assert resumed.epoch == EPOCHS
    assert (tmp_path / 'epoch_3.pth').exists()

    final = _final_state(resumed)
    assert final.keys() == uninterrupted.keys()
    trained = [n for n, p in resumed.model.named_parameters()
               if p.requires_grad]
    for key, value in uninterrupted.items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=1e-6,
                                   msg=key)
    # the trainable part did move away from its initial values
    assert any(not torch.allclose(final[n], checkpoint['state_dict'][n])
               for n in trained)
