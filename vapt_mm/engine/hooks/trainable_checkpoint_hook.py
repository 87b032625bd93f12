"""Save only the trainable part of a prompt-tuned model, and load it back."""
import logging
import re
from typing import List, Optional

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

# Checkpoints this hook writes are loaded through mmengine's Runner, which
# needs the weights_only allow-list on torch >= 2.6.
from ..checkpoint_loading import register_runner_checkpoint_globals
from ...models.utils.frozen_state import (frozen_state_dict_keys, pretrained_checkpoints,
                           unwrap_model)

register_runner_checkpoint_globals()

__all__ = [
    'TrainableCheckpointHook', 'drop_frozen_weights',
    'complete_trainable_only_checkpoint', 'is_trainable_only'
]

_NUM_SHOWN = 5


def _preview(names: List[str]) -> str:
    names = sorted(names)
    shown = ', '.join(names[:_NUM_SHOWN])
    more = len(names) - _NUM_SHOWN
    return shown + (f' and {more} more' if more > 0 else '')


def _strip_wrapper_prefix(key: str) -> str:
    # Runner.load_checkpoint strips the same prefix after the hooks run.
    return re.sub(r'^module\.', '', key)


def drop_frozen_weights(model: nn.Module,
                        checkpoint: dict,
                        drop_frozen_buffers: bool = True) -> List[str]:
    """Remove the frozen part of ``model`` from ``checkpoint['state_dict']``.

    Marks the checkpoint ``meta['trainable_only'] = True`` and records
    ``meta['dropped_keys']`` (sorted), ``meta['num_dropped_keys']``,
    ``meta['pretrained_checkpoints']`` (module name to the checkpoint its
    ``init_cfg`` loads, e.g. ``{'backbone': 'checkpoints/vit.pth'}``) and,
    for a model that records it in its state dict (``PromptedClassifier``),
    ``meta['backbone_fingerprint']`` (of the frozen backbone weights). Other
    entries (optimizer, schedulers, message hub) are left as they are.

    Args:
        model (nn.Module): The (unwrapped) model the checkpoint was taken
            from.
        checkpoint (dict): A checkpoint as built by
            ``Runner.save_checkpoint``; modified in place.
        drop_frozen_buffers (bool): Also drop the persistent buffers of
            frozen modules. Defaults to True.

    Returns:
        list[str]: The dropped keys.

    Example:
        >>> import torch.nn as nn
        >>> model = nn.Module()
        >>> model.backbone, model.head = nn.Linear(4, 4), nn.Linear(4, 2)
        >>> _ = model.backbone.requires_grad_(False)
        >>> ckpt = dict(meta=dict(), state_dict=model.state_dict())
        >>> drop_frozen_weights(model, ckpt)
        ['backbone.bias', 'backbone.weight']
        >>> list(ckpt['state_dict']), ckpt['meta']['trainable_only']
        (['head.weight', 'head.bias'], True)
    """
    state_dict = checkpoint.get('state_dict')
    if not isinstance(state_dict, dict):
        raise KeyError('TrainableCheckpointHook: the checkpoint has no '
                       "'state_dict' dict, got keys "
                       f'{sorted(checkpoint)}.')
    frozen = frozen_state_dict_keys(model, include_buffers=drop_frozen_buffers)
    dropped = sorted(key for key in state_dict
                     if _strip_wrapper_prefix(key) in frozen)
    for key in dropped:
        del state_dict[key]
    meta = checkpoint.setdefault('meta', {})
    meta.update(
        trainable_only=True,
        dropped_keys=dropped,
        num_dropped_keys=len(dropped),
        pretrained_checkpoints=pretrained_checkpoints(model))
    fingerprint = (_recorded_backbone_fingerprint(state_dict)
                   if _completes_itself(model) else None)
    if fingerprint is not None:
        meta['backbone_fingerprint'] = fingerprint
    return dropped


def _recorded_backbone_fingerprint(state_dict: dict) -> Optional[str]:
    # PromptedClassifier stores its backbone record as ``_extra_state``.
    from vapt_mm.models.classifiers.exact_loading import read_backbone_record
    for key, value in state_dict.items():
        if _strip_wrapper_prefix(key) == '_extra_state':
            record = read_backbone_record(value)
            return (record or {}).get('backbone_fingerprint')
    return None


def complete_trainable_only_checkpoint(model: nn.Module,
                                       checkpoint: dict,
                                       require_pretrained: bool = True
                                       ) -> List[str]:
    """Fill a trainable-only checkpoint's frozen keys from the pretrained
    weights, before it is loaded into ``model``.

    A model that completes and checks state dicts itself
    (``PromptedClassifier``, see
    :mod:`vapt_mm.models.classifiers.exact_loading`) is left to do so, with
    its backbone fingerprint check: the checkpoint is returned untouched.
    For other models, this function checks that the keys the checkpoint lacks are exactly the keys its
    writer dropped and that all of them are frozen in ``model``; then, if
    ``model.init_weights()`` has not run yet (``Runner.test()`` and
    ``Runner.val()`` never call it), runs it so the frozen part is loaded
    from its ``init_cfg`` (the pretrained backbone); finally copies the
    model's frozen tensors into ``checkpoint['state_dict']``, so loading the
    checkpoint restores the full model without missing keys.

    A checkpoint without ``meta['trainable_only']`` is left untouched.

    Args:
        model (nn.Module): The (unwrapped) model the checkpoint will be
            loaded into.
        checkpoint (dict): The loaded checkpoint; modified in place.
        require_pretrained (bool): Refuse to fill frozen keys when no module
            of ``model`` has a ``Pretrained`` init_cfg (the frozen weights
            would be random). Set it to False for backbones that load their
            weights in their constructor. Defaults to True.

    Returns:
        list[str]: The keys filled in from the model (none for a model that
        completes state dicts itself).

    Raises:
        RuntimeError: If the checkpoint lacks trainable keys, or lacks keys
            its writer did not drop, or the model has no pretrained source
            for its frozen part.

    Example:
        >>> # with `model` built from the training config:
        >>> ckpt = torch.load('epoch_100.pth')  # doctest: +SKIP
        >>> complete_trainable_only_checkpoint(model, ckpt)  # doctest: +SKIP
        >>> model.load_state_dict(ckpt['state_dict'])  # doctest: +SKIP
    """
    meta = checkpoint.get('meta') or {}
    if not meta.get('trainable_only', False) or _completes_itself(model):
        return []
    state_dict = checkpoint.get('state_dict')
    if not isinstance(state_dict, dict):
        raise KeyError('TrainableCheckpointHook: the trainable-only '
                       "checkpoint has no 'state_dict' dict, got keys "
                       f'{sorted(checkpoint)}.')
    model_keys = list(model.state_dict().keys())
    present = {_strip_wrapper_prefix(key) for key in state_dict}
    missing = [key for key in model_keys if key not in present]
    frozen = frozen_state_dict_keys(model, include_buffers=True)
    trainable_missing = [key for key in missing if key not in frozen]
    if trainable_missing:
        raise RuntimeError(
            'TrainableCheckpointHook: the trainable-only checkpoint lacks '
            f'{len(trainable_missing)} key(s) that train in '
            f'{type(model).__name__}: {_preview(trainable_missing)}. The '
            'model must freeze the same parameters as the one that wrote '
            'the checkpoint.')
    if 'dropped_keys' in meta:
        dropped = set(meta['dropped_keys'])
        unexplained = [key for key in missing if key not in dropped]
        if unexplained:
            raise RuntimeError(
                'TrainableCheckpointHook: the trainable-only checkpoint '
                f'lacks {len(unexplained)} frozen key(s) that its writer did '
                f'not drop: {_preview(unexplained)}. The model differs from '
                'the one that wrote the checkpoint.')
    if not missing:
        return []

    current = pretrained_checkpoints(model)
    if require_pretrained and not current:
        written_with = meta.get('pretrained_checkpoints') or 'none'
        raise RuntimeError(
            'TrainableCheckpointHook: the checkpoint holds only the trainable '
            f'part ({len(missing)} frozen key(s) dropped, e.g. '
            f'{_preview(missing)}) but {type(model).__name__} has no '
            "init_cfg=dict(type='Pretrained', checkpoint=...) to restore "
            'them, so the frozen weights would be random. Set '
            'model.backbone.init_cfg (the checkpoint was written with '
            f'{written_with}), load a full checkpoint, or set '
            'require_pretrained=False if the backbone loads its weights in '
            'its constructor.')
    written = meta.get('pretrained_checkpoints') or {}
    for name, path in written.items():
        if current.get(name) != path:
            print_log(
                f'TrainableCheckpointHook: {name or "the model"} was trained '
                f'from {path!r} but now initialises from '
                f'{current.get(name)!r}; the frozen weights must be the same '
                'file.',
                logger='current',
                level=logging.WARNING)

    if hasattr(model, 'init_weights') and not getattr(model, 'is_init',
                                                      False):
        print_log(
            'TrainableCheckpointHook: trainable-only checkpoint; '
            'initialising the frozen part from init_cfg '
            f'({current or "the constructors"}).',
            logger='current')
        model.init_weights()
    model_state = model.state_dict()
    for key in missing:
        state_dict[key] = model_state[key]
    print_log(
        f'TrainableCheckpointHook: took {len(missing)} frozen key(s) from '
        'the initialised model, the rest from the checkpoint.',
        logger='current')
    return missing


def _completes_itself(model: nn.Module) -> bool:
    # Imported here: vapt_mm.engine is imported before vapt_mm.models.
    from vapt_mm.models.classifiers.exact_loading import has_exact_loading
    return has_exact_loading(model)


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Write checkpoints without the frozen backbone.

    Use it next to mmengine's ``CheckpointHook`` (which decides when to
    save). Saving (``before_save_checkpoint``): removes every frozen
    parameter (``requires_grad=False``) and, by default, the buffers of
    frozen modules from ``checkpoint['state_dict']`` and records what it
    did in ``checkpoint['meta']`` (``trainable_only``, ``dropped_keys``,
    ``num_dropped_keys``, ``pretrained_checkpoints``,
    ``backbone_fingerprint``). Optimizer and scheduler states stay in the
    checkpoint, so it can be resumed from. For ViT-B/16 with VAPT this
    shrinks a checkpoint from ~330 MB to a few hundred kB.

    Loading needs no hook for ``PromptedClassifier``: the model completes a
    trainable-only state dict from its pretrained backbone and checks the
    backbone fingerprint itself, in every loading path (``tools/test.py``,
    ``load_from``, ``resume``, mmpretrain's ``get_model`` and inferencers;
    see :mod:`vapt_mm.models.classifiers.exact_loading`). For other models
    ``after_load_checkpoint`` (which ``Runner.load_checkpoint`` calls before
    copying weights into the model) still checks a trainable-only
    checkpoint (the keys it lacks must be exactly the frozen keys its writer
    dropped) and completes it from the model's pretrained init
    (``model.init_weights()``); see
    :func:`complete_trainable_only_checkpoint`. Such models need the hook
    in the config that loads the checkpoint too.

    Frozen modules must not change their buffers while training (a frozen
    backbone stays in eval mode in ``PromptedClassifier``), or set
    ``drop_frozen_buffers=False``.

    Args:
        drop_frozen_buffers (bool): Also drop the persistent buffers of
            frozen modules. Defaults to True.
        require_pretrained (bool): When loading a trainable-only checkpoint
            into a model that does not complete it itself, refuse a model
            without a ``Pretrained`` init_cfg. Defaults to True.

    Example:
        >>> default_hooks = dict(
        ...     checkpoint=dict(type='CheckpointHook', interval=10))
        >>> custom_hooks = [dict(type='TrainableCheckpointHook')]
    """

    priority = 'LOW'

    def __init__(self,
                 drop_frozen_buffers: bool = True,
                 require_pretrained: bool = True) -> None:
        for name, value in (('drop_frozen_buffers', drop_frozen_buffers),
                            ('require_pretrained', require_pretrained)):
            if not isinstance(value, bool):
                raise TypeError(f'TrainableCheckpointHook: `{name}` must be '
                                f'a bool, got {value!r}.')
        self.drop_frozen_buffers = drop_frozen_buffers
        self.require_pretrained = require_pretrained
        self._warned_no_pretrained = False

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Drop the frozen weights from the checkpoint being saved.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The checkpoint about to be written.
        """
        model = unwrap_model(runner.model)
        dropped = drop_frozen_weights(model, checkpoint,
                                      self.drop_frozen_buffers)
        if (dropped and not checkpoint['meta']['pretrained_checkpoints']
                and not self._warned_no_pretrained):
            self._warned_no_pretrained = True
            print_log(
                'TrainableCheckpointHook: the model has no Pretrained '
                'init_cfg, so the frozen weights dropped from the '
                'checkpoint cannot be restored when it is loaded.',
                logger='current',
                level=logging.WARNING)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Complete a trainable-only checkpoint before it is loaded, for
        models that do not complete it themselves.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint; completed in place.
        """
        complete_trainable_only_checkpoint(
            unwrap_model(runner.model), checkpoint, self.require_pretrained)


def is_trainable_only(checkpoint: Optional[dict]) -> bool:
    """Whether ``checkpoint`` was written by :class:`TrainableCheckpointHook`.

    Args:
        checkpoint (dict, optional): A loaded checkpoint.

    Returns:
        bool: True if its meta says ``trainable_only``.

    Example:
        >>> is_trainable_only(dict(meta=dict(trainable_only=True)))
        True
    """
    return bool(((checkpoint or {}).get('meta') or {}).get('trainable_only'))
