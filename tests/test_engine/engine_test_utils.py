"""Tiny Runner set-ups for the engine tests: a 64-wide, 2-block ViT on
32 px images, an in-memory dataset, and a metric that keeps predictions."""
import copy
import itertools
import logging
import os.path as osp
from typing import List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

import vapt_mm  # noqa: F401  (registers models, hooks, optim wrappers)

NUM_CLASSES = 3
IMG_SIZE = 32
EMBED_DIMS = 64

TINY_VIT = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=EMBED_DIMS,
        num_layers=2,
        num_heads=4,
        feedforward_channels=128),
    img_size=IMG_SIZE,
    patch_size=8)

_names = itertools.count()


class TinyImageDataset(Dataset):
    """``length`` random 3x32x32 images (fixed by ``seed``), labels i % 3."""

    def __init__(self, length: int = 8, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.rand(length, 3, IMG_SIZE, IMG_SIZE,
                                 generator=generator) * 255
        self.metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        sample = DataSample().set_gt_label(index % NUM_CLASSES)
        return dict(inputs=self.images[index].clone(), data_samples=sample)


class PredictionCollector(BaseMetric):
    """Keeps every ``pred_score`` it sees, in dataset order."""

    def __init__(self) -> None:
        super().__init__()
        self.scores: List[torch.Tensor] = []

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.scores.append(sample['pred_score'].clone())
            self.results.append(1)

    def compute_metrics(self, results: list) -> dict:
        return dict(num_samples=len(results))

    def stacked(self) -> torch.Tensor:
        return torch.stack(self.scores)


class Interrupted(Exception):
    """Raised by :class:`StopAfterEpoch`."""


class StopAfterEpoch(Hook):
    """Simulates a crash after the checkpoint of epoch ``epoch`` is saved."""

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW)

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epoch:
            raise Interrupted(f'stopped after epoch {self.epoch}')


def tiny_model_cfg(pretrained: Optional[str] = None,
                   neck: Optional[dict] = None) -> dict:
    """A PromptedClassifier on the tiny ViT (VPT-deep, no dropout)."""
    backbone = copy.deepcopy(TINY_VIT)
    if pretrained is not None:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
    return dict(
        type='PromptedClassifier',
        backbone=backbone,
        neck=neck or dict(type='VPTNeck', num_tokens=4, deep=True),
        head=dict(
            type='LinearClsHead',
            num_classes=NUM_CLASSES,
            in_channels=EMBED_DIMS),
        data_preprocessor=dict(
            type='ClsDataPreprocessor',
            num_classes=NUM_CLASSES,
            mean=[127.5] * 3,
            std=[127.5] * 3))


def write_pretrained_backbone(path: str, seed: int = 123) -> str:
    """Save a tiny ViT's weights (a plain tensor state dict) to ``path``."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    backbone = MODELS.build(copy.deepcopy(TINY_VIT))
    backbone.init_weights()
    torch.save(backbone.state_dict(), path)
    return path


def _loader(dataset: Dataset, shuffle: bool) -> dict:
    return dict(
        dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=shuffle, seed=0),
        batch_size=4,
        num_workers=0,
        persistent_workers=False)


def make_runner(work_dir: str,
                model: Optional[dict] = None,
                train: bool = True,
                test: bool = False,
                max_epochs: int = 1,
                custom_hooks: Optional[list] = None,
                optim_wrapper: Optional[dict] = None,
                load_from: Optional[str] = None,
                resume: bool = False,
                train_length: int = 8) -> Runner:
    """A Runner on the tiny model; ``runner.test_metric`` collects test
    predictions when ``test`` is set."""
    kwargs = {}
    if train:
        kwargs.update(
            train_dataloader=_loader(TinyImageDataset(train_length, 0), True),
            train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
            optim_wrapper=optim_wrapper or dict(
                optimizer=dict(
                    type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
            param_scheduler=dict(
                type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs,
                eta_min=0.01))
    metric = None
    if test:
        metric = PredictionCollector()
        kwargs.update(
            test_dataloader=_loader(TinyImageDataset(6, seed=1), False),
            test_cfg=dict(),
            test_evaluator=[metric])
    runner = Runner(
        model=model if model is not None else tiny_model_cfg(),
        work_dir=work_dir,
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks or [],
        load_from=load_from,
        resume=resume,
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        experiment_name=f'engine_test_{next(_names)}',
        log_level='INFO',
        **kwargs)
    runner.test_metric = metric
    return runner


def log_text(runner: Runner) -> str:
    """Everything the runner's logger wrote to its log file."""
    path = osp.join(runner.log_dir, f'{runner.timestamp}.log')
    for handler in runner.logger.handlers:
        handler.flush()
    with open(path, encoding='utf-8') as f:
        return f.read()


class LogCapture(logging.Handler):
    """Collects what ``print_log(..., logger='current')`` logs, as text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @property
    def text(self) -> str:
        return '\n'.join(self.messages)

    def __enter__(self) -> 'LogCapture':
        self.logger = MMLogger.get_current_instance()
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)
