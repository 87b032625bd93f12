"""Convert the official MoCo v3 ViT pre-training checkpoints.

``vit-b-300ep.pth.tar`` holds ``{'state_dict': ..., 'optimizer': ...,
'epoch': ..., 'arch': ...}``. The state dict carries the query encoder under
``module.base_encoder.`` (timm-style names, ``head.*`` is the projection
MLP), the momentum encoder under ``module.momentum_encoder.`` and the
predictor under ``module.predictor.``. The conversion keeps one encoder
without its projection head.
"""
from typing import Any, Dict, Mapping

import torch

from ..utils.user_errors import CheckpointFormatError, ConfigError
from .checkpoint_io import select_wrapped_state_dict
from .timm_vit_keys import convert_timm_vit_names

__all__ = ['convert_mocov3_vit']

FORMAT_NAME = 'MoCo v3 ViT'
ENCODERS = ('base_encoder', 'momentum_encoder')


def convert_mocov3_vit(checkpoint: Mapping[str, Any],
                       source: str = 'the MoCo v3 checkpoint',
                       encoder: str = 'base_encoder'
                       ) -> Dict[str, torch.Tensor]:
    """Convert one encoder of a MoCo v3 checkpoint to mmpretrain ViT names.

    Args:
        checkpoint (Mapping[str, Any]): The loaded MoCo v3 file.
        source (str): The checkpoint's name for error messages.
        encoder (str): ``'base_encoder'`` (the one MoCo v3 evaluates and
            releases for transfer) or ``'momentum_encoder'``. Defaults to
            ``'base_encoder'``.

    Returns:
        dict[str, torch.Tensor]: Weights for a plain mmpretrain
        ``VisionTransformer`` (no prefix); the projection head is left out.

    Raises:
        ValueError: There is no ``'state_dict'``, no key starts with
            ``module.<encoder>.``, or the encoder is not a plain ViT.

    Example:
        >>> from vapt_mm.converters import \
        ...     load_torch_checkpoint
        >>> ckpt = load_torch_checkpoint('vit-b-300ep.pth.tar')
        >>> state_dict = convert_mocov3_vit(ckpt, 'vit-b-300ep.pth.tar')
        >>> state_dict['ln1.weight'].shape
        torch.Size([768])
    """
    if encoder not in ENCODERS:
        raise ConfigError(
            f'encoder must be one of {ENCODERS}, got {encoder!r}.')
    state_dict = select_wrapped_state_dict(checkpoint, 'state_dict', source)
    prefix = f'module.{encoder}.'
    encoder_weights = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not encoder_weights:
        top = sorted({'.'.join(k.split('.')[:2]) for k in state_dict})
        raise CheckpointFormatError(
            f"{source} is not a {FORMAT_NAME} checkpoint: no key in "
            f"'state_dict' starts with {prefix!r} (key groups found: {top}). "
            'A MoCo v3 linear-probe release (module.<timm name>) converts '
            'with the timm converter.')
    return convert_timm_vit_names(encoder_weights, source, FORMAT_NAME)
