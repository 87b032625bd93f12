"""Stop a diverging run before it writes a non-finite checkpoint."""
import json
import logging
import os.path as osp
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import UserError, user_message
from ...models.utils.frozen_state import unwrap_model

__all__ = [
    'FiniteLossHook', 'TrainingDivergedError', 'dynamic_fp16_loss_scaler',
    'non_finite_entries'
]

_NUM_SHOWN = 5
DOCS = 'docs/training.md#diverging-runs'

#: Written into the work directory when a run is stopped; the sweep reads
#: it (``vapt_mm.protocol.run_state``).
DIVERGED_FILE = 'diverged.json'


class TrainingDivergedError(UserError, RuntimeError):
    """The loss or the weights became NaN or infinite while training."""


def _preview(names: List[str]) -> str:
    shown = ', '.join(names[:_NUM_SHOWN])
    more = len(names) - _NUM_SHOWN
    return shown + (f' and {more} more' if more > 0 else '')


def dynamic_fp16_loss_scaler(optim_wrapper) -> Optional[object]:
    """The dynamic fp16 loss scaler of an optimizer wrapper, if it has one.

    mmengine's ``AmpOptimWrapper`` keeps a ``torch.amp.GradScaler`` in
    ``loss_scaler``; when the scaled gradients overflow, the scaler skips
    the optimizer step and lowers the scale (torch's ``GradScaler`` is
    always dynamic: a numeric mmengine ``loss_scale`` only sets its initial
    scale). A bfloat16 wrapper
    (``cast_dtype=torch.bfloat16``) has float32's range and is not counted,
    nor are wrappers without a scaler (fp32, ``CPUAmpOptimWrapper``).

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The runner's
            optimizer wrapper.

    Returns:
        GradScaler or None: The first such scaler.

    Example:
        >>> from mmengine.optim import OptimWrapper
        >>> sgd = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> dynamic_fp16_loss_scaler(OptimWrapper(sgd)) is None
        True
    """
    wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
    wrappers = wrappers.values() if wrappers else [optim_wrapper]
    for wrapper in wrappers:
        scaler = getattr(wrapper, 'loss_scaler', None)
        if scaler is None or not hasattr(scaler, 'is_enabled'):
            continue
        if not scaler.is_enabled():
            continue
        if getattr(wrapper, 'cast_dtype', None) == torch.bfloat16:
            continue
        return scaler
    return None


def non_finite_entries(tree: object, prefix: str = '') -> List[str]:
    """The keys of the floating-point tensors in ``tree`` holding NaN or inf.

    Args:
        tree (object): A tensor, or dicts / lists / tuples of them (a
            checkpoint, a state dict, an optimizer state).
        prefix (str): Prepended to the keys. Defaults to ''.

    Returns:
        list[str]: Dotted keys, in the order found.

    Example:
        >>> non_finite_entries({'a': torch.ones(2),
        ...                     'b': {'c': torch.tensor([float('nan')])}})
        ['b.c']
    """
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() or tree.is_complex():
            if not bool(torch.isfinite(tree).all()):
                return [prefix]
        return []
    if isinstance(tree, dict):
        items: Iterable[Tuple[object, object]] = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return []
    found = []
    for key, value in items:
        found += non_finite_entries(value, f'{prefix}.{key}' if prefix else
                                    str(key))
    return found


def _trainable(model: nn.Module) -> List[Tuple[str, torch.Tensor]]:
    return [(name, param) for name, param in model.named_parameters()
            if param.requires_grad]


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training when the loss or the trained weights stop being finite.

    After every training iteration it checks that the loss (``outputs
    ['loss']``, which mmengine's ``train_step`` returns) and every trainable
    parameter (after the optimizer step) are finite. Otherwise it raises
    :class:`TrainingDivergedError`, a user error naming the epoch, the
    iteration, the learning rate, the loss value and the fix. In
    distributed runs every process counts the failures of all processes
    (one ``all_reduce`` of two numbers per iteration), so all of them stop
    at the same iteration and none waits for the others forever.

    It runs before the checkpoint hook in the same iteration and epoch
    (priority ``BELOW_NORMAL``: after the logger has logged the iteration,
    before ``ParamSchedulerHook`` moves the learning rate and before
    ``CheckpointHook``), so a diverged run never reaches a save, and the
    checkpoints already written stay. As a last guard it also refuses, in
    ``before_save_checkpoint``, any checkpoint whose ``state_dict`` or
    optimizer state holds a non-finite floating-point tensor.

    Mixed precision: with a dynamic fp16 loss scaler (mmengine's
    ``AmpOptimWrapper`` with float16; see :func:`dynamic_fp16_loss_scaler`)
    an overflow makes the scaler skip the optimizer step and lower the
    scale. Gradient overflows leave the loss finite, so they never reach
    this rule. A non-finite *loss* (an fp16 overflow in the forward pass) is
    tolerated for at most ``max_amp_skipped_iters`` consecutive iterations,
    and only while the trainable parameters stay finite (proof that the
    scaler skipped those steps); each is logged as a warning. The next one
    in a row stops the run. Without such a scaler (float32, bfloat16)
    nothing is tolerated.

    Args:
        max_amp_skipped_iters (int): Consecutive iterations with a
            non-finite loss tolerated while a dynamic fp16 loss scaler is
            active. 0 tolerates none. Defaults to 3.
        check_checkpoints (bool): Refuse to write a checkpoint with
            non-finite tensors. Defaults to True.

    Example:
        >>> # on in configs/_base_/default_runtime.py as
        >>> default_hooks = dict(finite_loss=dict(type='FiniteLossHook'))
    """

    priority = 'BELOW_NORMAL'

    def __init__(self,
                 max_amp_skipped_iters: int = 3,
                 check_checkpoints: bool = True) -> None:
        if (not isinstance(max_amp_skipped_iters, int)
                or isinstance(max_amp_skipped_iters, bool)
                or max_amp_skipped_iters < 0):
            raise TypeError('FiniteLossHook: `max_amp_skipped_iters` must be '
                            'an int >= 0, got '
                            f'{max_amp_skipped_iters!r}.')
        if not isinstance(check_checkpoints, bool):
            raise TypeError('FiniteLossHook: `check_checkpoints` must be a '
                            f'bool, got {check_checkpoints!r}.')
        self.max_amp_skipped_iters = max_amp_skipped_iters
        self.check_checkpoints = check_checkpoints
        self.skipped_in_a_row = 0

    def before_train(self, runner) -> None:
        """Reset the count of tolerated iterations.

        Args:
            runner (Runner): The runner of the training process.
        """
        self.skipped_in_a_row = 0

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[Dict] = None) -> None:
        """Check the iteration's loss and the weights after its step.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): The index of the batch in the epoch.
            data_batch: The batch (unused).
            outputs (dict, optional): ``train_step``'s log variables.

        Raises:
            TrainingDivergedError: If a process saw a non-finite loss that
                the AMP rule does not tolerate, or non-finite weights.
        """
        model = unwrap_model(runner.model)
        params = _trainable(model)
        loss = self._loss(outputs)
        device = loss.device if loss is not None else (
            params[0][1].device if params else torch.device('cpu'))
        flags = torch.zeros(2, device=device)
        if loss is not None:
            flags[0] = (~torch.isfinite(loss.detach())).any().float()
        if params:
            finite = torch.stack([
                torch.isfinite(p.detach()).all().to(device) for _, p in params
            ])
            flags[1] = (~finite).any().float()
        if get_world_size() > 1:
            all_reduce(flags, op='sum')
        bad_loss, bad_weights = (int(v) for v in flags.tolist())

        if bad_weights:
            self._raise(runner, batch_idx, loss, bad_loss, bad_weights,
                        [name for name, p in params
                         if not bool(torch.isfinite(p.detach()).all())])
        if not bad_loss:
            self.skipped_in_a_row = 0
            return
        scaler = dynamic_fp16_loss_scaler(runner.optim_wrapper)
        if (scaler is not None
                and self.skipped_in_a_row < self.max_amp_skipped_iters):
            self.skipped_in_a_row += 1
            print_log(
                f'FiniteLossHook: {self._loss_text(loss, bad_loss)} at '
                f'{self._position(runner, batch_idx)}; the fp16 loss scaler '
                f'skipped the step (scale now {scaler.get_scale():g}, '
                'weights finite). Tolerated '
                f'{self.skipped_in_a_row} of {self.max_amp_skipped_iters} '
                'iterations in a row.',
                logger='current',
                level=logging.WARNING)
            return
        self._raise(runner, batch_idx, loss, bad_loss, 0, [])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse a checkpoint with non-finite weights or optimizer state.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The checkpoint about to be written.

        Raises:
            TrainingDivergedError: If a tensor of ``checkpoint['state_dict']``
                or ``checkpoint['optimizer']`` is not finite.
        """
        if not self.check_checkpoints:
            return
        bad = non_finite_entries(
            {key: checkpoint[key] for key in ('state_dict', 'optimizer')
             if key in checkpoint})
        if not bad:
            return
        meta = checkpoint.get('meta') or {}
        raise TrainingDivergedError(
            user_message(
                f'refusing to write the checkpoint of epoch '
                f'{meta.get("epoch", "?")}, iteration '
                f'{meta.get("iter", "?")}: {len(bad)} tensor(s) hold NaN or '
                'infinite values',
                where=_preview(bad),
                fix=self._fix(runner),
                docs=DOCS))

    @staticmethod
    def _loss(outputs: Optional[Dict]) -> Optional[torch.Tensor]:
        """The iteration's total loss as a tensor, if ``outputs`` has one."""
        if not isinstance(outputs, dict):
            return None
        values = [outputs['loss']] if 'loss' in outputs else [
            value for key, value in outputs.items() if 'loss' in key
        ]
        if not values:
            return None
        tensors = [torch.as_tensor(v).detach().float().reshape(-1)
                   for v in values]
        device = tensors[0].device
        return torch.cat([t.to(device) for t in tensors])

    @staticmethod
    def _loss_text(loss: Optional[torch.Tensor], bad_loss: int) -> str:
        """'the loss is nan', or with several processes how many saw it."""
        here = ('not logged' if loss is None else
                ', '.join(f'{v:g}' for v in loss.tolist()))
        world = get_world_size()
        if world == 1:
            return f'the loss is {here}'
        if not bad_loss:
            return f'the loss is finite (this process: {here})'
        return (f'the loss is non-finite on {bad_loss} of {world} processes '
                f'(this process: {here})')

    @staticmethod
    def _position(runner, batch_idx: int) -> str:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            per_epoch = len(runner.train_dataloader)
            return (f'epoch {runner.epoch + 1}, iteration {batch_idx + 1} of '
                    f'{per_epoch} (iteration {runner.iter + 1} overall)')
        return f'iteration {runner.iter + 1} of {runner.max_iters}'

    @staticmethod
    def _lr(runner) -> str:
        try:
            lrs = runner.optim_wrapper.get_lr()
        except Exception:  # an optim wrapper without get_lr
            return 'unknown'
        values = []
        for group_lrs in lrs.values():
            for lr in group_lrs:
                if f'{lr:.4g}' not in values:
                    values.append(f'{lr:.4g}')
        return ', '.join(values) if values else 'unknown'

    @staticmethod
    def _fix(runner) -> str:
        fix = ('lower the learning rate (optim_wrapper.optimizer.lr; with '
               'auto_scale_lr the Runner scales it by the total batch size) '
               'or clip gradients (optim_wrapper.clip_grad=dict(max_norm='
               '1.0)), then resume from the last checkpoint written before '
               'the divergence (tools/train.py --resume PATH)')
        if dynamic_fp16_loss_scaler(runner.optim_wrapper) is not None:
            fix += ('; with --amp in float16, try --amp-dtype bfloat16 or '
                    'train without --amp')
        return fix

    def _raise(self, runner, batch_idx: int, loss: Optional[torch.Tensor],
               bad_loss: int, bad_weights: int, names: List[str]) -> None:
        lr = self._lr(runner)
        position = self._position(runner, batch_idx)
        if bad_weights:
            what = (f'training diverged: the trainable weights became NaN or '
                    f'infinite at {position}, learning rate {lr} '
                    f'({self._loss_text(loss, bad_loss)})')
            where = (f'parameters {_preview(names)}' if names else
                     f'the weights of {bad_weights} other process(es)')
        else:
            what = (f'training diverged: {self._loss_text(loss, bad_loss)} '
                    f'at {position}, learning rate {lr}')
            where = 'the loss returned by the model (outputs["loss"])'
            if self.skipped_in_a_row:
                what += (f', after {self.skipped_in_a_row} iterations in a '
                         'row the fp16 loss scaler already skipped')
        last = runner.message_hub.get_info('last_ckpt')
        if last:
            where += f'; the last checkpoint written is {last}'
        message = user_message(what, where=where, fix=self._fix(runner),
                               docs=DOCS)
        work_dir = getattr(runner, 'work_dir', None)
        if work_dir and is_main_process():
            # A record the VTAB-1k/FGVC sweep reads: a grid point whose
            # learning rate diverges is a finished, losing run.
            with atomic_write(osp.join(work_dir, DIVERGED_FILE), 'w') as f:
                json.dump(dict(epoch=runner.epoch, iter=runner.iter, lr=lr,
                               message=message), f, indent=2)
        raise TrainingDivergedError(message)
