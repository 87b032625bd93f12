"""A toy regression model whose loss turns non-finite at chosen iterations,
a CPU stand-in for mmengine's fp16 AmpOptimWrapper, and a Runner for them."""
import itertools
from contextlib import contextmanager
from typing import Iterable, Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner import Runner
from torch.utils.data import Dataset

import vapt_mm  # noqa: F401  (registers the hooks)

_names = itertools.count()

ITERS_PER_EPOCH = 4


class PairDataset(Dataset):
    """8 fixed (x, y) pairs with y = x0 - 2 x1."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(2 * ITERS_PER_EPOCH, 2, generator=generator)
        self.y = self.x[:, :1] - 2 * self.x[:, 1:]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.x[index], data_samples=self.y[index])


class ToyRegressor(BaseModel):
    """A linear layer; the loss of the training iterations (1-based) in
    ``nonfinite_at`` is multiplied by inf, and the weight is overwritten
    with NaN in the forward pass of the iterations in ``corrupt_at``."""

    def __init__(self,
                 nonfinite_at: Iterable[int] = (),
                 corrupt_at: Iterable[int] = ()) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(2, 1)
        self.nonfinite_at = set(nonfinite_at)
        self.corrupt_at = set(corrupt_at)
        self.train_calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            self.train_calls += 1
            if self.train_calls in self.corrupt_at:
                with torch.no_grad():
                    self.linear.weight.fill_(float('nan'))
        out = self.linear(inputs)
        if mode != 'loss':
            return out
        loss = (out - data_samples).pow(2).mean()
        if self.train_calls in self.nonfinite_at:
            loss = loss * float('inf')
        return dict(loss=loss)


class CPUFp16AmpStandIn(AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` (its backward, step and state dict
    with a dynamic ``GradScaler``) on CPU, where the original asserts a GPU:
    the scaler is ``torch.amp.GradScaler('cpu')`` and the forward pass runs
    without autocast. ``cast_dtype`` says which precision it stands in for.
    """

    def __init__(self, dtype: torch.dtype = torch.float16, **kwargs) -> None:
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = torch.amp.GradScaler('cpu')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        with OptimWrapper.optim_context(self, model):
            yield


def toy_runner(work_dir: str,
               model: Optional[ToyRegressor] = None,
               amp: Optional[torch.dtype] = None,
               lr: float = 0.05,
               max_epochs: int = 3,
               finite_loss: Optional[dict] = None,
               checkpoint: Optional[dict] = None,
               custom_hooks: Optional[list] = None,
               resume: bool = False,
               load_from: Optional[str] = None,
               max_iters: Optional[int] = None) -> Runner:
    """A Runner training :class:`ToyRegressor` with SGD, 4 iterations per
    epoch, a checkpoint per epoch (AtomicCheckpointHook) and FiniteLossHook.

    ``amp``: None for a plain OptimWrapper, else the dtype of a
    :class:`CPUFp16AmpStandIn`. ``max_iters``: train by iterations instead
    of epochs.
    """
    model = model if model is not None else ToyRegressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optim_wrapper = (
        OptimWrapper(optimizer) if amp is None else CPUFp16AmpStandIn(
            dtype=amp, optimizer=optimizer))
    return Runner(
        model=model,
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=PairDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        train_cfg=(dict(by_epoch=True, max_epochs=max_epochs)
                   if max_iters is None else dict(
                       by_epoch=False, max_iters=max_iters)),
        optim_wrapper=optim_wrapper,
        default_hooks=dict(
            checkpoint=checkpoint or dict(
                type='AtomicCheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1),
            finite_loss=finite_loss or dict(type='FiniteLossHook')),
        custom_hooks=custom_hooks or [],
        resume=resume,
        load_from=load_from,
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        experiment_name=f'finite_loss_test_{next(_names)}',
        log_level='INFO')
