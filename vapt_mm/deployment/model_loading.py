"""Build a classifier from its config and load trained weights into it.

The deployment tools (export, class-activation maps) start from the same
two files a user has after training: the config and a checkpoint (full,
trainable-only, or a prompt file). Weights load through the project's one
loader, :func:`vapt_mm.apis.load_weights`.
"""
import os.path as osp
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..utils.user_errors import ConfigError, user_message

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
    """Load a full checkpoint, a trainable-only one or a prompt file.

    The project's one loader, :func:`vapt_mm.apis.load_weights`: a
    ``PromptedClassifier`` loads exactly or refuses (a file without the
    frozen backbone is completed from the config's ``Pretrained`` file,
    whose fingerprint must equal the recorded one; missing, unexpected or
    misshaped keys are errors naming them and the file).

    Args:
        model (nn.Module): The built model (``init_weights`` not needed).
        weights (str): The ``.pth`` checkpoint or ``.safetensors`` prompt
            file.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        MissingFileError: If the file does not exist.
        CheckpointError: If it is unreadable or does not fit the model.

    Example:
        >>> model = build_classifier('configs/vapt/vit-b16_vtab-eurosat.py')
        >>> load_weights(model, 'work_dirs/eurosat/epoch_100.pth')
        ... # doctest: +SKIP
    """
    from ..apis.weights import load_weights as load_any_weights
    return load_any_weights(model, weights)


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
