"""Convert Google's original ViT ``.npz`` checkpoints (e.g. ``ViT-B_16.npz``).

The files hold JAX/Flax arrays under names such as ``embedding/kernel``
(patch embedding, ``(p, p, in, dims)``), ``cls``, 
``Transformer/posembed_input/pos_embedding``,
``Transformer/encoderblock_<i>/MultiHeadDotProductAttention_1/query/kernel``
(``(dims, heads, head_dims)``) and ``Transformer/encoder_norm/scale``. The
ImageNet-21k files also carry ``pre_logits/*`` and ``head/*``; the backbone
conversion leaves them out. Their LayerNorms use eps 1e-6, which is
mmpretrain's ``VisionTransformer`` default.
"""
import re
from typing import Dict, Mapping

import numpy as np
import torch

from ..utils.user_errors import CheckpointFormatError, MissingFileError
from .checkpoint_io import require_source_keys
from .mmpretrain_vit_layout import check_vit_geometry, mmpretrain_vit_keys

__all__ = ['load_google_vit_npz', 'convert_google_vit']

FORMAT_NAME = 'Google ViT .npz'
_TOP_LEVEL_KEYS = ('embedding/kernel', 'embedding/bias', 'cls',
                   'Transformer/posembed_input/pos_embedding',
                   'Transformer/encoder_norm/scale',
                   'Transformer/encoder_norm/bias')
_BLOCK = re.compile(r'^Transformer/encoderblock_(\d+)/')


def _block_keys(i: int) -> Dict[str, str]:
    """Map the source names of block ``i`` to short roles."""
    b = f'Transformer/encoderblock_{i}/'
    att = b + 'MultiHeadDotProductAttention_1/'
    mlp = b + 'MlpBlock_3/'
    keys = {
        'ln1.weight': b + 'LayerNorm_0/scale',
        'ln1.bias': b + 'LayerNorm_0/bias',
        'ln2.weight': b + 'LayerNorm_2/scale',
        'ln2.bias': b + 'LayerNorm_2/bias',
        'out.kernel': att + 'out/kernel',
        'out.bias': att + 'out/bias',
        'fc1.kernel': mlp + 'Dense_0/kernel',
        'fc1.bias': mlp + 'Dense_0/bias',
        'fc2.kernel': mlp + 'Dense_1/kernel',
        'fc2.bias': mlp + 'Dense_1/bias',
    }
    for name in ('query', 'key', 'value'):
        keys[f'{name}.kernel'] = att + f'{name}/kernel'
        keys[f'{name}.bias'] = att + f'{name}/bias'
    return keys


def load_google_vit_npz(path: str) -> Dict[str, np.ndarray]:
    """Read every array of a Google ViT ``.npz`` file.

    Args:
        path (str): The ``.npz`` file.

    Returns:
        dict[str, np.ndarray]: The arrays by name.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not an ``.npz`` archive.

    Example:
        >>> import numpy as np
        >>> np.savez('/tmp/w.npz', cls=np.zeros((1, 1, 8), np.float32))
        >>> load_google_vit_npz('/tmp/w.npz')['cls'].shape
        (1, 1, 8)
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise MissingFileError(
            f'Google ViT checkpoint {path!r} does not exist.') from e
    except (OSError, ValueError, EOFError) as e:
        raise CheckpointFormatError(f'{path!r} is not a {FORMAT_NAME} archive '
                                    f'(numpy could not read it: {e}).') from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointFormatError(f'{path!r} is a single .npy array, not a '
                                    f'{FORMAT_NAME} archive of named arrays.')
    with archive:
        return {name: archive[name] for name in archive.files}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _check_ndim(weights: Mapping[str, np.ndarray], key: str, ndim: int,
                source: str, layout: str) -> np.ndarray:
    array = np.asarray(weights[key])
    if array.ndim != ndim:
        raise CheckpointFormatError(
            f'{source}: {key!r} has shape {array.shape}, '
            f'expected {ndim} dims {layout}.')
    return array


def convert_google_vit(weights: Mapping[str, np.ndarray],
                       source: str = 'the .npz weights'
                       ) -> Dict[str, torch.Tensor]:
    """Convert Google ViT arrays to mmpretrain ``VisionTransformer`` weights.

    Args:
        weights (Mapping[str, np.ndarray]): The arrays of a Google ViT
            ``.npz`` (see :func:`load_google_vit_npz`).
        source (str): The checkpoint's name for error messages.

    Returns:
        dict[str, torch.Tensor]: Backbone weights without prefix, for
        ``VisionTransformer(arch=..., patch_size=..., out_type='cls_token')``.
        ``pre_logits`` and ``head`` are left out.

    Raises:
        ValueError: Required arrays are missing (all of them are named) or
            have shapes that do not form one ViT.

    Example:
        >>> weights = load_google_vit_npz('checkpoints/ViT-B_16.npz')
        >>> state_dict = convert_google_vit(weights, 'ViT-B_16.npz')
        >>> state_dict['layers.0.attn.qkv.weight'].shape
        torch.Size([2304, 768])
    """
    block_ids = sorted({
        int(m.group(1))
        for m in (_BLOCK.match(k) for k in weights) if m is not None
    })
    required = list(_TOP_LEVEL_KEYS)
    for i in block_ids or [0]:
        required += _block_keys(i).values()
    require_source_keys(weights, required, source, FORMAT_NAME)
    if block_ids != list(range(len(block_ids))):
        raise CheckpointFormatError(
            f'{source}: encoder block indices must run 0..'
            f'{len(block_ids) - 1} without gaps, got {block_ids}.')

    kernel = _check_ndim(weights, 'embedding/kernel', 4, source,
                         '(patch, patch, in_channels, dims)')
    out = {
        'cls_token': _tensor(weights['cls']),
        'pos_embed':
        _tensor(weights['Transformer/posembed_input/pos_embedding']),
        # HWIO (flax conv) -> OIHW (torch conv)
        'patch_embed.projection.weight': _tensor(kernel.transpose(3, 2, 0, 1)),
        'patch_embed.projection.bias': _tensor(weights['embedding/bias']),
    }
    for i in block_ids:
        src = _block_keys(i)
        dst = f'layers.{i}.'
        out[dst + 'ln1.weight'] = _tensor(weights[src['ln1.weight']])
        out[dst + 'ln1.bias'] = _tensor(weights[src['ln1.bias']])
        qkv_w, qkv_b = [], []
        for name in ('query', 'key', 'value'):
            k = _check_ndim(weights, src[f'{name}.kernel'], 3, source,
                            '(dims, heads, head_dims)')
            # (dims_in, heads, head_dims) -> (heads * head_dims, dims_in)
            qkv_w.append(k.reshape(k.shape[0], -1).T)
            qkv_b.append(np.asarray(weights[src[f'{name}.bias']]).reshape(-1))
        out[dst + 'attn.qkv.weight'] = _tensor(np.concatenate(qkv_w, 0))
        out[dst + 'attn.qkv.bias'] = _tensor(np.concatenate(qkv_b, 0))
        k = _check_ndim(weights, src['out.kernel'], 3, source,
                        '(heads, head_dims, dims)')
        # (heads, head_dims, dims_out) -> (dims_out, heads * head_dims)
        out[dst + 'attn.proj.weight'] = _tensor(k.reshape(-1, k.shape[-1]).T)
        out[dst + 'attn.proj.bias'] = _tensor(weights[src['out.bias']])
        out[dst + 'ln2.weight'] = _tensor(weights[src['ln2.weight']])
        out[dst + 'ln2.bias'] = _tensor(weights[src['ln2.bias']])
        for role, name in (('fc1', 'ffn.layers.0.0'), ('fc2', 'ffn.layers.1')):
            k = _check_ndim(weights, src[f'{role}.kernel'], 2, source,
                            '(in_features, out_features)')
            out[f'{dst}{name}.weight'] = _tensor(k.T)
            out[f'{dst}{name}.bias'] = _tensor(weights[src[f'{role}.bias']])
    out['ln1.weight'] = _tensor(weights['Transformer/encoder_norm/scale'])
    out['ln1.bias'] = _tensor(weights['Transformer/encoder_norm/bias'])

    check_vit_geometry(out, source)
    return {k: out[k] for k in mmpretrain_vit_keys(len(block_ids))}
