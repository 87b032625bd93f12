"""Learnable static prompt tokens, shared by VPT and VAPT's static blocks."""
import math
from typing import Tuple

import torch
import torch.nn as nn

from ...utils.user_errors import ConfigError


def vpt_uniform_bound(patch_size: Tuple[int, int], embed_dims: int) -> float:
    """Half-width v of VPT's uniform prompt init, ``sqrt(6 / (3*ph*pw + d))``.

    Args:
        patch_size (tuple): (ph, pw) of the patch embedding.
        embed_dims (int): Token width d.

    Example:
        >>> vpt_uniform_bound((16, 16), 768)
        0.0625
    """
    ph, pw = patch_size
    return math.sqrt(6.0 / (3 * ph * pw + embed_dims))


class StaticPrompts(nn.Module):
    """``num_sets`` learnable prompt sets of shape ``(p, d)`` with VPT's
    uniform init and a prompt dropout.

    Args:
        num_sets (int): How many prompt sets (1 for shallow, L for deep).
        num_tokens (int): Prompt tokens per set p.
        embed_dims (int): Token width d.
        patch_size (tuple): Patch size, for the init bound
            ``sqrt(6 / (3 * ph * pw + d))``.
        dropout (float): Dropout rate applied to the prompts of each
            sample. Defaults to 0.

    Example:
        >>> prompts = StaticPrompts(12, 10, 768, (16, 16))
        >>> prompts(3, batch_size=2).shape
        torch.Size([2, 10, 768])
    """

    def __init__(self,
                 num_sets: int,
                 num_tokens: int,
                 embed_dims: int,
                 patch_size: Tuple[int, int],
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(
                f'prompt dropout must be in [0, 1), got {dropout!r}.')
        self.prompts = nn.Parameter(
            torch.empty(num_sets, num_tokens, embed_dims))
        self.bound = vpt_uniform_bound(patch_size, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.prompts, -self.bound, self.bound)

    def forward(self, index: int, batch_size: int) -> torch.Tensor:
        """Prompt set ``index`` expanded to the batch, through the dropout.

        The dropout acts on the expanded tensor, so each sample gets its
        own mask.
        """
        prompts = self.prompts[index].unsqueeze(0)
        return self.dropout(prompts.expand(batch_size, -1, -1))
