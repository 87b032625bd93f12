"""Convert the official MAE pre-training checkpoints (ViT encoder).

``mae_pretrain_vit_base.pth`` holds ``{'model': state_dict}`` with timm-style
encoder names (``cls_token``, ``pos_embed`` (fixed 2-D sin-cos),
``patch_embed.proj.*``, ``blocks.<i>.*``, ``norm.*``). Checkpoints that also
hold the decoder (``mask_token``, ``decoder_*``) convert too; the decoder is
left out.
"""
from typing import Any, Dict, Mapping

import torch

from .checkpoint_io import select_wrapped_state_dict
from .timm_vit_keys import TIMM_VIT_HEAD_PREFIXES, convert_timm_vit_names

__all__ = ['convert_mae_vit']

FORMAT_NAME = 'MAE ViT'
_DECODER_PREFIXES = ('decoder_', 'mask_token')


def convert_mae_vit(checkpoint: Mapping[str, Any],
                    source: str = 'the MAE checkpoint'
                    ) -> Dict[str, torch.Tensor]:
    """Convert an MAE encoder checkpoint to mmpretrain ViT names.

    Args:
        checkpoint (Mapping[str, Any]): The loaded MAE file: a dict with the
            encoder weights under ``'model'``.
        source (str): The checkpoint's name for error messages.

    Returns:
        dict[str, torch.Tensor]: Weights for a plain mmpretrain
        ``VisionTransformer`` (no prefix). The decoder is left out.

    Raises:
        ValueError: There is no ``'model'`` entry, or it is not a plain ViT
            encoder (missing or unsupported keys are named).

    Example:
        >>> from vapt_mm.converters import \
        ...     load_torch_checkpoint
        >>> ckpt = load_torch_checkpoint('mae_pretrain_vit_base.pth')
        >>> state_dict = convert_mae_vit(ckpt, 'mae_pretrain_vit_base.pth')
        >>> len(state_dict)
        150
    """
    state_dict = select_wrapped_state_dict(checkpoint, 'model', source)
    return convert_timm_vit_names(
        state_dict,
        source,
        FORMAT_NAME,
        drop_prefixes=TIMM_VIT_HEAD_PREFIXES + _DECODER_PREFIXES)
