"""The schedules: 10 epochs of linear warm-up, then cosine to 0 at 100."""
import glob
import math
import os.path as osp

import mmengine.optim  # noqa: F401  (registers the schedulers)
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import PARAM_SCHEDULERS

CONFIGS_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
SCHEDULES = sorted(
    glob.glob(osp.join(CONFIGS_DIR, '_base_', 'schedules', '*.py')))
EPOCH_LENGTH = 4  # iterations per epoch, any value


def _lr_per_iteration(cfg, epoch_length):
    """Build the config's schedulers the way the Runner does
    (convert_to_iter_based) and record the lr of every iteration."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], **{
        k: v
        for k, v in cfg.optim_wrapper.optimizer.items() if k != 'type'
    })
    schedulers = []
    for sched_cfg in cfg.param_scheduler:
        kwargs = dict(sched_cfg)
        cls = PARAM_SCHEDULERS.get(kwargs.pop('type'))
        assert kwargs.pop('convert_to_iter_based') is True
        assert kwargs.pop('by_epoch') is True
        schedulers.append(
            cls.build_iter_from_epoch(
                optimizer, epoch_length=epoch_length, **kwargs))
    lrs = []
    for _ in range(cfg.train_cfg.max_epochs * epoch_length):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    return lrs


@pytest.mark.parametrize('path', SCHEDULES, ids=osp.basename)
def test_warmup_then_cosine(path):
    cfg = Config.fromfile(path)
    assert cfg.train_cfg.max_epochs == 100
    base = cfg.optim_wrapper.optimizer.lr
    lrs = _lr_per_iteration(cfg, EPOCH_LENGTH)
    warmup = 10 * EPOCH_LENGTH
    # linear warm-up, rising every iteration from 1e-3 * lr to lr (mmengine
    # reaches the full rate at the last warm-up iteration)
    for it in range(warmup):
        expected = base * (1e-3 + (1 - 1e-3) * it / (warmup - 1))
        assert lrs[it] == pytest.approx(expected, rel=1e-6), it
    # cosine from lr at epoch 10 to 0 at epoch 100
    for it in range(warmup, len(lrs)):
        progress = (it - warmup) / (90 * EPOCH_LENGTH)
        expected = base * 0.5 * (1 + math.cos(math.pi * progress))
        assert lrs[it] == pytest.approx(expected, rel=1e-6, abs=1e-12), it


@pytest.mark.parametrize('path', SCHEDULES, ids=osp.basename)
def test_optimizer_and_lr_scaling(path):
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1.0, momentum=0.9, weight_decay=1e-3)
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
