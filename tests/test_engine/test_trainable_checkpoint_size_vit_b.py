"""At ViT-B/16 size the trainable-only checkpoint is under 1% of the full one.

Prediction equality between the two kinds of checkpoint is checked on tiny
models in test_trainable_checkpoint_hook.py; here only the sizes are
measured, on the real EuroSAT VAPT config, as Runner.save_checkpoint would
write them (state dict, SGD momentum state, meta).
"""
import copy
import io
import os.path as osp

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import vapt_mm  # noqa: F401
from vapt_mm.engine.hooks.trainable_checkpoint_hook import \
    drop_frozen_weights

CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'vapt', 'vit-b16_vtab-eurosat.py')


def _nbytes(obj) -> int:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def test_trainable_only_checkpoint_is_under_one_percent_for_vit_b16():
    cfg = Config.fromfile(CONFIG)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg')
    model = MODELS.build(model_cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1, momentum=0.9)
    for p in trainable:
        p.grad = torch.ones_like(p)
    optimizer.step()  # creates the momentum buffers a real checkpoint has
    checkpoint = dict(
        meta=dict(epoch=1), state_dict=model.state_dict(),
        optimizer=optimizer.state_dict())
    full = _nbytes(checkpoint)
    dropped = drop_frozen_weights(model, checkpoint)
    small = _nbytes(checkpoint)
    # The trainable tensors, plus the record of the frozen backbone's
    # fingerprint and file.
    assert set(checkpoint['state_dict']) == {
        n for n, p in model.named_parameters() if p.requires_grad} | {
            '_extra_state'}
    assert all(key.startswith('backbone.') for key in dropped)
    assert full > 300e6  # ViT-B/16 in float32
    assert small / full < 0.01, (small, full)
