"""Rename timm-style ViT parameters to mmpretrain ``VisionTransformer`` names.

timm's ``VisionTransformer``, the MAE encoder and the MoCo v3 encoder all
name their weights the same way (``blocks.0.norm1.weight``,
``blocks.0.mlp.fc1.weight``, ...). Tensors keep their layout: timm and
mmpretrain both store the fused ``qkv`` projection as ``(3 * dims, dims)``
with query, key and value stacked in that order.
"""
import re
from typing import Dict, Iterable, Mapping, Tuple

import torch

from ..utils.user_errors import CheckpointFormatError
from .checkpoint_io import require_source_keys
from .mmpretrain_vit_layout import check_vit_geometry, mmpretrain_vit_keys

__all__ = ['TIMM_VIT_HEAD_PREFIXES', 'timm_vit_required_keys',
           'convert_timm_vit_names']

# Classifier parts that a backbone checkpoint leaves out.
TIMM_VIT_HEAD_PREFIXES = ('head.', 'pre_logits.')

_TOP_LEVEL = {
    'cls_token': 'cls_token',
    'pos_embed': 'pos_embed',
    'patch_embed.proj.weight': 'patch_embed.projection.weight',
    'patch_embed.proj.bias': 'patch_embed.projection.bias',
    'norm.weight': 'ln1.weight',
    'norm.bias': 'ln1.bias',
}
_IN_BLOCK = {
    'norm1': 'ln1',
    'attn.qkv': 'attn.qkv',
    'attn.proj': 'attn.proj',
    'norm2': 'ln2',
    'mlp.fc1': 'ffn.layers.0.0',
    'mlp.fc2': 'ffn.layers.1',
}
_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.(' +
                        '|'.join(re.escape(k) for k in _IN_BLOCK) +
                        r')\.(weight|bias)$')


def timm_vit_required_keys(num_blocks: int = 1) -> Tuple[str, ...]:
    """The timm-style keys a plain ViT backbone checkpoint must have.

    Args:
        num_blocks (int): How many blocks to list. Defaults to 1.

    Returns:
        tuple[str]: Key names.

    Example:
        >>> 'blocks.0.attn.qkv.weight' in timm_vit_required_keys()
        True
    """
    keys = list(_TOP_LEVEL)
    for i in range(num_blocks):
        keys += [
            f'blocks.{i}.{part}.{kind}' for part in _IN_BLOCK
            for kind in ('weight', 'bias')
        ]
    return tuple(keys)


def convert_timm_vit_names(
        state_dict: Mapping[str, torch.Tensor],
        source: str,
        format_name: str = 'timm ViT',
        drop_prefixes: Iterable[str] = TIMM_VIT_HEAD_PREFIXES
) -> Dict[str, torch.Tensor]:
    """Rename a timm-style ViT state dict to mmpretrain names.

    Args:
        state_dict (Mapping[str, torch.Tensor]): timm-style weights without
            any wrapper prefix (``module.`` etc. already removed).
        source (str): The checkpoint's name for error messages.
        format_name (str): The format named in errors. Defaults to
            ``'timm ViT'``.
        drop_prefixes (Iterable[str]): Keys starting with one of these are
            left out (the classifier). Defaults to ``('head.',
            'pre_logits.')``.

    Returns:
        dict[str, torch.Tensor]: Weights for mmpretrain's
        ``VisionTransformer`` (``out_type='cls_token'``).

    Raises:
        ValueError: A required key is missing, a key has no mmpretrain
            counterpart (e.g. layer scale, register tokens, ``fc_norm``), or
            shapes do not form one ViT.

    Example:
        >>> import timm
        >>> vit = timm.create_model('vit_tiny_patch16_224', num_classes=0)
        >>> out = convert_timm_vit_names(vit.state_dict(), 'vit-tiny')
        >>> out['layers.0.ffn.layers.0.0.weight'].shape
        torch.Size([768, 192])
    """
    drop_prefixes = tuple(drop_prefixes)
    kept = {
        k: v
        for k, v in state_dict.items() if not k.startswith(drop_prefixes)
    }
    num_blocks = len(
        {k.split('.')[1]
         for k in kept if k.startswith('blocks.')})
    require_source_keys(kept, timm_vit_required_keys(max(num_blocks, 1)),
                        source, format_name)

    converted: Dict[str, torch.Tensor] = {}
    unsupported = []
    for key, value in kept.items():
        if key in _TOP_LEVEL:
            converted[_TOP_LEVEL[key]] = value
            continue
        match = _BLOCK_KEY.match(key)
        if match is None:
            unsupported.append(key)
            continue
        index, part, kind = match.groups()
        converted[f'layers.{index}.{_IN_BLOCK[part]}.{kind}'] = value
    if unsupported:
        raise CheckpointFormatError(
            f'{source}: keys {unsupported} have no counterpart in a plain '
            "mmpretrain VisionTransformer (out_type='cls_token'); only "
            'ViTs with a CLS token, a final norm and no layer scale, '
            'register tokens or fc_norm are supported.')

    geometry = check_vit_geometry(converted, source)
    order = mmpretrain_vit_keys(geometry['num_layers'])
    return {k: converted[k] for k in order}
