"""Visual Prompt Tuning (Jia et al., ECCV 2022), shallow and deep."""
from typing import Optional

import torch
from mmpretrain.registry import MODELS

from .base_prompt_neck import BasePromptNeck
from .static_prompts import StaticPrompts


@MODELS.register_module()
class VPTNeck(BasePromptNeck):
    """Visual Prompt Tuning.

    * Shallow (``deep=False``): one learnable prompt set, inserted before
      block 0; the prompt tokens then flow through every block.
    * Deep (``deep=True``): one set per block; before every later block the
      prompt slots are overwritten with that block's set, so what block
      ``l-1`` computed at the prompt slots is discarded.

    Prompts are initialised from ``U(-v, v)``, ``v = sqrt(6 / (3*ph*pw + d))``
    and pass through a prompt dropout. Trainable parameters: ``p*d``
    (shallow) or ``L*p*d`` (deep). ``docs/method.md`` ("VPT") writes the
    method as equations.

    Args:
        num_tokens (int): Number of prompt tokens p per block.
        deep (bool): Deep prompts (one set per block). Defaults to False.
        dropout (float): Prompt dropout rate; the VPT authors use 0.1 for
            deep prompts. Defaults to 0.
        **kwargs: ``fast_path``, ``with_cp`` and the backbone geometry
            (``embed_dims``, ``num_layers``,
            ``patch_size``, ``patch_grid``) and ``init_cfg``; see
            :class:`BasePromptNeck`.

    Example:
        >>> # in a config; PromptedClassifier fills in the geometry
        >>> neck = dict(type='VPTNeck', num_tokens=10, deep=True,
        ...             dropout=0.1)
        >>> # on its own
        >>> neck = VPTNeck(10, deep=True, embed_dims=768, num_layers=12,
        ...                patch_size=16, patch_grid=14)
        >>> sum(p.numel() for p in neck.parameters())
        92160
    """

    def __init__(self,
                 num_tokens: int,
                 deep: bool = False,
                 dropout: float = 0.0,
                 **kwargs) -> None:
        super().__init__(num_tokens, **kwargs)
        self.deep = deep
        self.prompts = StaticPrompts(
            num_sets=self.num_layers if deep else 1,
            num_tokens=num_tokens,
            embed_dims=self.embed_dims,
            patch_size=self.patch_size,
            dropout=dropout)

    def get_prompts(self, index: int, tokens: torch.Tensor, hw: tuple,
                    num_prefix_tokens: int) -> Optional[torch.Tensor]:
        if not self.replaces_prompts(index):
            return None
        return self.prompts(index, tokens.shape[0])

    def reset_parameters(self) -> None:
        self.prompts.reset_parameters()

    def replaces_prompts(self, index: int) -> bool:
        return index == 0 or self.deep

    def prompts_are_static(self, index: int) -> bool:
        return True
