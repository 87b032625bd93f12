"""save_backbone_state_dict: what it writes, and that an interrupted write
keeps the previous file."""
import pytest
import torch
from interrupted_writes import (SimulatedWriteError, snapshot,
                                writes_half_then_fails)

from vapt_mm.converters import save_backbone_state_dict


def test_written_file_holds_the_prefixed_weights(tmp_path):
    weights = {'cls_token': torch.arange(4.).view(1, 1, 4),
               'ln1.weight': torch.ones(4)[::2]}  # a strided view
    dst = tmp_path / 'sub' / 'vit.pth'
    assert save_backbone_state_dict(weights, str(dst), 'backbone.') == 2
    loaded = torch.load(dst, weights_only=True)
    assert list(loaded) == ['state_dict']
    assert sorted(loaded['state_dict']) == [
        'backbone.cls_token', 'backbone.ln1.weight']
    for name, value in weights.items():
        torch.testing.assert_close(loaded['state_dict']['backbone.' + name],
                                   value)
    with pytest.raises(TypeError, match="'ln1.bias' must be a tensor"):
        save_backbone_state_dict({'ln1.bias': [0.0]}, str(dst))


def test_failure_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    dst = tmp_path / 'vit.pth'
    save_backbone_state_dict({'w': torch.zeros(3)}, str(dst))
    before = snapshot(tmp_path)

    monkeypatch.setattr(torch, 'save', writes_half_then_fails(torch.save))
    with pytest.raises(SimulatedWriteError):
        save_backbone_state_dict({'w': torch.ones(1000)}, str(dst))
    assert snapshot(tmp_path) == before  # old bytes, no temporary file
    monkeypatch.undo()
    torch.testing.assert_close(
        torch.load(dst, weights_only=True)['state_dict']['w'], torch.zeros(3))
