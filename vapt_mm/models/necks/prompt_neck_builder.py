"""Build a prompt neck for the backbone it will prompt."""
from typing import Union

import torch.nn as nn
from mmpretrain.registry import MODELS

from ...utils.user_errors import ConfigError, ConfigTypeError
from .base_prompt_neck import BasePromptNeck

__all__ = ['build_prompt_neck']


def build_prompt_neck(neck: Union[dict, nn.Module],
                      adapter,
                      owner: str = 'PromptedClassifier') -> BasePromptNeck:
    """Build ``neck`` with the geometry of ``adapter``'s backbone, or check
    that a built neck fits it.

    A config gets the backbone geometry (width, depth, patch size, patch
    grid, prefix tokens) as default arguments; a built neck must have been
    built for exactly that geometry (one built without ``num_prefix_tokens``
    gets it filled in).

    Args:
        neck (dict | BasePromptNeck): A prompt neck config or module.
        adapter (BackboneAdapter): The adapter of the backbone the neck
            will prompt.
        owner (str): The model class named in error messages. Defaults to
            'PromptedClassifier'.

    Returns:
        BasePromptNeck: The neck.

    Raises:
        TypeError: If ``neck`` is not a prompt neck.
        ValueError: If a built neck does not fit the backbone; the message
            names each mismatching value.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> from vapt_mm.models.backbones import build_backbone_adapter
        >>> adapter = build_backbone_adapter(VisionTransformer(arch='b'))
        >>> neck = build_prompt_neck(dict(type='VPTNeck', num_tokens=10),
        ...                          adapter)
        >>> neck.embed_dims, neck.patch_grid
        (768, (14, 14))
    """
    geometry = adapter.geometry()
    neck_type = neck.get('type') if isinstance(neck, dict) else type(neck)
    if isinstance(neck_type, str):
        neck_type = MODELS.get(neck_type)
    if not (isinstance(neck_type, type)
            and issubclass(neck_type, BasePromptNeck)):
        name = getattr(neck_type, '__name__', neck_type)
        raise ConfigTypeError(
            f'{owner} needs a prompt neck (VPTNeck, VAPTNeck or another '
            f'BasePromptNeck), got {name!r}. For a plain neck use '
            'ImageClassifier.')
    if isinstance(neck, dict):
        neck = MODELS.build(neck, default_args=geometry)
    built_for = dict(
        embed_dims=neck.embed_dims,
        num_layers=neck.num_layers,
        patch_size=tuple(neck.patch_size),
        patch_grid=tuple(neck.patch_grid),
        num_prefix_tokens=neck.num_prefix_tokens)
    if neck.num_prefix_tokens is None:  # a neck built without it
        neck.num_prefix_tokens = geometry['num_prefix_tokens']
        built_for['num_prefix_tokens'] = neck.num_prefix_tokens
    mismatch = {
        key: (value, geometry[key])
        for key, value in built_for.items() if value != geometry[key]
    }
    if mismatch:
        details = ', '.join(f'{key}={ours} (backbone: {theirs})'
                            for key, (ours, theirs) in mismatch.items())
        raise ConfigError(
            f'{type(neck).__name__} does not fit backbone '
            f'{type(adapter.backbone).__name__}: {details}. Leave these '
            f'arguments out of the neck config; {owner} fills them in.')
    return neck
