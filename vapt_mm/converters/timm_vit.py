"""Convert timm ViT state dicts (e.g. ``vit_base_patch16_224.orig_in21k``).

timm ships these weights as ``model.safetensors`` or ``pytorch_model.bin``
holding a flat state dict; checkpoints saved by timm's training script wrap
it in ``state_dict``. Both work, with or without a DDP ``module.`` prefix.
"""
from typing import Any, Dict, Mapping

import torch

from ..utils.user_errors import CheckpointFormatError
from .checkpoint_io import select_wrapped_state_dict
from .timm_vit_keys import convert_timm_vit_names

__all__ = ['convert_timm_vit']

FORMAT_NAME = 'timm ViT'


def convert_timm_vit(checkpoint: Mapping[str, Any],
                     source: str = 'the timm weights'
                     ) -> Dict[str, torch.Tensor]:
    """Convert a timm ``VisionTransformer`` checkpoint to mmpretrain names.

    Args:
        checkpoint (Mapping[str, Any]): A timm state dict, or a dict holding
            it under ``'state_dict'`` or ``'model'``.
        source (str): The checkpoint's name for error messages.

    Returns:
        dict[str, torch.Tensor]: Weights for mmpretrain's
        ``VisionTransformer`` (no prefix); ``head`` and ``pre_logits`` are
        left out.

    Raises:
        ValueError: The checkpoint is not a plain timm ViT (missing or
            unsupported keys are named).

    Example:
        >>> import timm
        >>> vit = timm.create_model('vit_base_patch16_224.orig_in21k')
        >>> state_dict = convert_timm_vit(vit.state_dict(), 'orig_in21k')
        >>> state_dict['patch_embed.projection.weight'].shape
        torch.Size([768, 3, 16, 16])
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointFormatError(f'{source} must hold a dict, got '
                                    f'{type(checkpoint).__name__}.')
    state_dict: Mapping[str, Any] = checkpoint
    if 'cls_token' not in checkpoint and 'module.cls_token' not in checkpoint:
        for wrapper in ('state_dict', 'model'):
            if isinstance(checkpoint.get(wrapper), Mapping):
                state_dict = select_wrapped_state_dict(
                    checkpoint, wrapper, source)
                break
    if any(k.startswith('module.') for k in state_dict):
        state_dict = {
            k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state_dict.items()
        }
    return convert_timm_vit_names(state_dict, source, FORMAT_NAME)
