"""The parameter names and shapes of mmpretrain's ``VisionTransformer``.

Every converter ends in this layout; :func:`check_vit_geometry` validates a
converted state dict and tells which backbone config it fits.
"""
import math
from typing import Dict, List, Mapping

import torch

from ..utils.user_errors import CheckpointFormatError

__all__ = [
    'LAYER_PARAM_NAMES', 'mmpretrain_vit_keys', 'check_vit_geometry',
    'describe_vit_geometry'
]

# The parameters of one mmpretrain ``TransformerEncoderLayer`` (no layer
# scale, qkv bias on), in the order the module registers them.
LAYER_PARAM_NAMES = (
    'ln1.weight', 'ln1.bias', 'attn.qkv.weight', 'attn.qkv.bias',
    'attn.proj.weight', 'attn.proj.bias', 'ln2.weight', 'ln2.bias',
    'ffn.layers.0.0.weight', 'ffn.layers.0.0.bias', 'ffn.layers.1.weight',
    'ffn.layers.1.bias')


def mmpretrain_vit_keys(num_layers: int) -> List[str]:
    """List the state-dict keys of a ``VisionTransformer`` with a CLS token.

    Args:
        num_layers (int): Number of transformer layers.

    Returns:
        list[str]: Keys in module order (``out_type='cls_token'``,
        ``final_norm=True``).

    Example:
        >>> mmpretrain_vit_keys(12)[:3]
        ['cls_token', 'pos_embed', 'patch_embed.projection.weight']
        >>> len(mmpretrain_vit_keys(12))
        150
    """
    keys = [
        'cls_token', 'pos_embed', 'patch_embed.projection.weight',
        'patch_embed.projection.bias'
    ]
    for i in range(num_layers):
        keys += [f'layers.{i}.{name}' for name in LAYER_PARAM_NAMES]
    keys += ['ln1.weight', 'ln1.bias']
    return keys


def check_vit_geometry(state_dict: Mapping[str, torch.Tensor],
                       source: str) -> Dict[str, int]:
    """Check that converted weights form one consistent ViT.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Weights in mmpretrain
            ``VisionTransformer`` names (no prefix).
        source (str): The source checkpoint's name for error messages.

    Returns:
        dict: ``embed_dims``, ``num_layers``, ``feedforward_channels``,
        ``patch_size``, ``in_channels`` and ``pos_grid`` (side of the square
        patch grid the position embedding was trained for).

    Raises:
        ValueError: A key is missing or a shape disagrees with the others
            (the message names the key, its shape and the expected shape).

    Example:
        >>> import torch
        >>> from mmpretrain.models import VisionTransformer
        >>> vit = VisionTransformer(arch='b')
        >>> check_vit_geometry(vit.state_dict(), 'vit')['embed_dims']
        768
    """
    layer_ids = sorted({
        int(k.split('.')[1])
        for k in state_dict if k.startswith('layers.')
    })
    num_layers = len(layer_ids)
    if layer_ids != list(range(num_layers)):
        raise CheckpointFormatError(
            f'{source}: transformer layer indices must run '
            f'0..{num_layers - 1} without gaps, got {layer_ids}.')
    missing = [
        k for k in mmpretrain_vit_keys(num_layers) if k not in state_dict
    ]
    if missing:
        raise CheckpointFormatError(
            f'{source}: converted weights lack {missing}.')

    proj = state_dict['patch_embed.projection.weight']
    if proj.ndim != 4 or proj.shape[2] != proj.shape[3]:
        raise CheckpointFormatError(
            f'{source}: patch_embed.projection.weight has shape '
            f'{tuple(proj.shape)}, expected (embed_dims, in_channels, p, p).')
    dims, in_channels, patch_size = proj.shape[0], proj.shape[1], proj.shape[2]
    ffn = state_dict['layers.0.ffn.layers.0.0.weight'].shape[0] \
        if num_layers else 0
    pos_tokens = state_dict['pos_embed'].shape[1] \
        if state_dict['pos_embed'].ndim == 3 else -1

    expected = {
        'cls_token': (1, 1, dims),
        'pos_embed': (1, pos_tokens, dims),
        'patch_embed.projection.bias': (dims, ),
        'ln1.weight': (dims, ),
        'ln1.bias': (dims, ),
    }
    for i in range(num_layers):
        p = f'layers.{i}.'
        expected.update({
            p + 'ln1.weight': (dims, ),
            p + 'ln1.bias': (dims, ),
            p + 'attn.qkv.weight': (3 * dims, dims),
            p + 'attn.qkv.bias': (3 * dims, ),
            p + 'attn.proj.weight': (dims, dims),
            p + 'attn.proj.bias': (dims, ),
            p + 'ln2.weight': (dims, ),
            p + 'ln2.bias': (dims, ),
            p + 'ffn.layers.0.0.weight': (ffn, dims),
            p + 'ffn.layers.0.0.bias': (ffn, ),
            p + 'ffn.layers.1.weight': (dims, ffn),
            p + 'ffn.layers.1.bias': (dims, ),
        })
    wrong = [
        f'{k}: got {tuple(state_dict[k].shape)}, expected {shape}'
        for k, shape in expected.items()
        if tuple(state_dict[k].shape) != shape
    ]
    if wrong:
        raise CheckpointFormatError(
            f'{source}: inconsistent ViT shapes (embed_dims '
            f'{dims} from the patch embedding): ' +
            '; '.join(wrong))
    grid = math.isqrt(max(pos_tokens - 1, 0))
    if grid * grid != pos_tokens - 1:
        raise CheckpointFormatError(
            f'{source}: pos_embed has {pos_tokens} tokens, expected 1 CLS '
            'token plus a square grid of patch tokens.')
    return dict(
        embed_dims=dims,
        num_layers=num_layers,
        feedforward_channels=ffn,
        patch_size=patch_size,
        in_channels=in_channels,
        pos_grid=grid)


def describe_vit_geometry(geometry: Mapping[str, int]) -> str:
    """Say which mmpretrain backbone config the weights fit.

    Args:
        geometry (Mapping[str, int]): The result of
            :func:`check_vit_geometry`.

    Returns:
        str: A one-line description.

    Example:
        >>> describe_vit_geometry(dict(embed_dims=768, num_layers=12,
        ...     feedforward_channels=3072, patch_size=16, in_channels=3,
        ...     pos_grid=14))  # doctest: +ELLIPSIS
        'embed_dims=768, num_layers=12, feedforward_channels=3072, ...'
    """
    g = geometry
    return (f"embed_dims={g['embed_dims']}, num_layers={g['num_layers']}, "
            f"feedforward_channels={g['feedforward_channels']}, "
            f"patch_size={g['patch_size']}, position grid "
            f"{g['pos_grid']}x{g['pos_grid']} "
            f"(img_size={g['pos_grid'] * g['patch_size']})")
