"""Serve prompt files as tasks of one :class:`MultiTaskPromptedClassifier`."""
import os.path as osp
from typing import Optional

import torch.nn as nn

from ..models.classifiers.backbone_fingerprint import backbone_fingerprint
from ..utils.user_errors import (CheckpointError, CheckpointFormatError,
                                 ConfigError, user_message)
from .prompt_file import DOCS, read_prompt_file

__all__ = ['add_prompt_file_task']


def add_prompt_file_task(model: nn.Module,
                         path: str,
                         name: Optional[str] = None) -> str:
    """Add the task a prompt file holds to a multi-task model.

    The neck and head are built from the configs in the file's header and
    loaded strictly from its tensors; the backbone is not touched. The file
    must record the fingerprint of the model's backbone weights (the
    model's ``backbone_fingerprint``, computed from its backbone the first
    time it is needed), so a task is never served on other weights.

    Args:
        model (MultiTaskPromptedClassifier): The model, its backbone
            initialised (pretrained weights loaded).
        path (str): The prompt file.
        name (str, optional): The task name. Defaults to the file's stem.

    Returns:
        str: The task name.

    Raises:
        CheckpointFormatError: The file records no model config.
        CheckpointError: The file was trained on other backbone weights.
        ConfigError: The file holds a linear probe (no prompt neck), or
            also trained backbone parameters (``frozen_exclude``): a shared
            frozen backbone cannot serve it.

    Example:
        >>> add_prompt_file_task(model, 'eurosat.safetensors')
        ... # doctest: +SKIP
        'eurosat'
    """
    tensors, header = read_prompt_file(path)
    name = name or osp.splitext(osp.basename(path))[0]
    model_cfg = header.get('model') or {}
    structure = header.get('structure') or {}
    if model_cfg.get('head') and structure.get('neck') is None:
        raise ConfigError(
            user_message(
                f'Prompt file {path} holds a linear probe (a head without '
                'a prompt neck); a multi-task model serves prompt-tuned '
                'tasks only.',
                fix='serve it alone with tools/infer.py, or train the task '
                'with a VPTNeck or VAPTNeck.',
                docs=DOCS))
    if not model_cfg.get('neck') or not model_cfg.get('head'):
        raise CheckpointFormatError(
            user_message(
                f'Prompt file {path} records no neck and head config, so '
                'its task cannot be built.',
                fix='write it with save_prompt_file(..., config=CONFIG) or '
                'tools/model_converters/extract_prompts.py, which store the '
                'config.',
                docs=DOCS))
    extra = sorted(key for key in tensors
                   if not key.startswith(('neck.', 'head.')))
    trained = structure.get('frozen_exclude')
    if extra or trained:
        raise ConfigError(
            user_message(
                f'Prompt file {path} also trained backbone parameters, '
                'which a shared frozen backbone cannot serve.',
                where=f'tensors outside neck and head: {extra[:5]}'
                f'{" ..." if len(extra) > 5 else ""}; frozen_exclude: '
                f'{trained}',
                fix='serve it alone (tools/infer.py), or retrain it with a '
                'fully frozen backbone.',
                docs=DOCS))
    if model.backbone_fingerprint is None:
        model.backbone_fingerprint = backbone_fingerprint(model.backbone)
    recorded = header['backbone']['fingerprint']
    if recorded != model.backbone_fingerprint:
        raise CheckpointError(
            user_message(
                f'Prompt file {path} was trained on other backbone weights '
                'than the ones this model serves.',
                where=f'file: {recorded}; model: '
                f'{model.backbone_fingerprint}',
                fix='serve it with the backbone it was trained on (its '
                f'file: {header["backbone"].get("checkpoint")}).',
                docs=DOCS))
    model.add_task(name, dict(model_cfg['neck']), dict(model_cfg['head']),
                   fingerprint=recorded)
    try:
        for part, modules in (('neck', model.necks), ('head', model.heads)):
            prefix = f'{part}.'
            modules[name].load_state_dict(
                {
                    key[len(prefix):]: value
                    for key, value in tensors.items()
                    if key.startswith(prefix)
                },
                strict=True)
    except RuntimeError as error:
        model.remove_task(name)
        raise CheckpointError(
            user_message(
                f'Prompt file {path} does not fit the task built from its '
                f'own config: {error}',
                fix='write the file again.',
                docs=DOCS)) from error
    return name
