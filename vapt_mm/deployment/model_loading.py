"""Build a classifier from its config and load trained weights into it.

The deployment tools (export, class-activation maps) start from the same
two files a user has after training: the config and a checkpoint. The
checkpoint is either a full one or a trainable-only one written by
``TrainableCheckpointHook`` (prompts and head; the frozen backbone comes
from the ``Pretrained`` file named in the config). Weight loading lives in
:func:`load_weights` only, so it can follow the project's checkpoint
loading as that evolves.
"""
import os.path as osp
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from ..engine.hooks.trainable_checkpoint_hook import \
    complete_trainable_only_checkpoint
from ..utils.user_errors import CheckpointError, ConfigError, user_message

__all__ = ['load_config', 'build_classifier', 'load_weights']


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file and apply ``--cfg-options`` overrides.

    Args:
        config (str): Path of the config file.
        cfg_options (dict, optional): Overrides, as ``DictAction`` parses
            them (``{'model.neck.num_tokens': 5}``).

    Returns:
        Config: The config, with the default scope initialised.

    Raises:
        ConfigError: If the file does not exist or has no ``model``.

    Example:
        >>> cfg = load_config('configs/vapt/vit-b16_vtab-eurosat.py')
        >>> cfg.model.type
        'PromptedClassifier'
    """
    if not osp.isfile(config):
        raise ConfigError(
            user_message(
                'the config file does not exist',
                where=config,
                fix='pass the config the model was trained with'))
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise ConfigError(
            user_message(
                'the config has no model',
                where=config,
                fix='pass a training config (with model=dict(...))'))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return cfg


def load_weights(model: nn.Module, weights: str) -> dict:
    """Load a full or a trainable-only checkpoint into ``model``, exactly.

    A trainable-only checkpoint (``meta['trainable_only']``) is completed
    first: its frozen keys are taken from the pretrained file the model's
    ``init_cfg`` names (see :func:`complete_trainable_only_checkpoint`).
    Every key of the model must then be in the checkpoint and every key of
    the checkpoint in the model; anything else is refused, because a model
    with some weights left at their initial values would export or explain
    a different network without saying so.

    Args:
        model (nn.Module): The built model (``init_weights`` not needed).
        weights (str): Path of the checkpoint (``.pth``).

    Returns:
        dict: The loaded checkpoint.

    Raises:
        CheckpointError: If the file is missing or unreadable, or its keys
            do not fit the model.

    Example:
        >>> model = build_classifier('configs/vapt/vit-b16_vtab-eurosat.py')
        >>> load_weights(model, 'work_dirs/eurosat/epoch_100.pth')
        ... # doctest: +SKIP
    """
    if not osp.isfile(weights):
        raise CheckpointError(
            user_message(
                'the checkpoint file does not exist',
                where=weights,
                fix='pass the .pth file written by training (a full or a '
                'trainable-only checkpoint)'))
    try:
        checkpoint = _load_checkpoint(weights, map_location='cpu')
    except Exception as error:  # unreadable or not a torch file
        raise CheckpointError(
            user_message(
                f'the checkpoint cannot be read ({type(error).__name__}: '
                f'{error})',
                where=weights,
                fix='pass a checkpoint written by torch.save')) from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            user_message(
                f'the checkpoint holds a {type(checkpoint).__name__}, not a '
                'state dict',
                where=weights,
                fix='pass a checkpoint written by training'))
    try:
        complete_trainable_only_checkpoint(model, checkpoint)
        _load_checkpoint_to_model(model, checkpoint, strict=True)
    except FileNotFoundError as error:  # the backbone's Pretrained file
        raise CheckpointError(
            user_message(
                f'the checkpoint holds only the trainable part, and the '
                f'frozen part cannot be restored: {error}',
                where=weights,
                fix="make the config's Pretrained backbone file available "
                '(or pass --cfg-options '
                'model.backbone.init_cfg.checkpoint=PATH), or pass a full '
                'checkpoint')) from error
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(
            user_message(
                f'the checkpoint does not fit the model built from the '
                f'config: {error}',
                where=weights,
                fix='pass the config the checkpoint was trained with (and, '
                'for a trainable-only checkpoint, make the backbone '
                "init_cfg's Pretrained file available)")) from error
    return checkpoint


def build_classifier(config: Union[str, Config],
                     weights: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the classifier of ``config`` and load ``weights``, on the CPU.

    Args:
        config (str | Config): Path of the training config, or the config
            :func:`load_config` returned.
        weights (str, optional): Checkpoint to load with
            :func:`load_weights`. Without it the model keeps its
            initialisation (``init_weights`` is run, which loads the
            backbone's ``Pretrained`` file if the config names one).
        cfg_options (dict, optional): Config overrides (with a path).

    Returns:
        nn.Module: The classifier in eval mode.

    Example:
        >>> model = build_classifier('configs/demo/vapt_dinov2-s_digits.py',
        ...                          'work_dirs/demo/epoch_6.pth')
        ... # doctest: +SKIP
    """
    from mmpretrain.registry import MODELS

    cfg = config if isinstance(config, Config) else load_config(
        config, cfg_options)
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        # as mmengine's Runner does: a top-level data_preprocessor fills in
        # the model's
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if weights is None:
        model.init_weights()
    else:
        load_weights(model, weights)
    return model.eval()
