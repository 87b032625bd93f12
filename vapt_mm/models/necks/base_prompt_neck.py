"""The part every prompt neck shares: running the backbone with prompts."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmengine.utils import to_2tuple

from ..backbones import BackboneAdapter


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


class BasePromptNeck(BaseModule):
    """Base class of prompt necks.

    A prompt neck owns the prompt parameters and decides, before each
    transformer block, which prompt tokens the block sees. The token layout
    is always ``[prefix (c) | prompts (p) | patches (N)]``; prompts carry no
    position embedding. :meth:`forward_backbone` runs the backbone's own
    modules (through a :class:`BackboneAdapter`) with the prompts inserted,
    and removes them before every output is formatted, so each output keeps
    the shape and meaning it has for the bare backbone. Applied after the
    backbone, in mmpretrain's neck position, the neck is the identity.

    The backbone geometry arguments are filled in by
    :class:`PromptedClassifier` from the backbone it builds; give them only
    when building a neck on its own.

    Args:
        num_tokens (int): Number of prompt tokens p.
        embed_dims (int, optional): Token width d of the backbone.
        num_layers (int, optional): Number of transformer blocks L.
        patch_size (int | tuple, optional): Patch size of the patch
            embedding, used by the VPT initialisation.
        patch_grid (int | tuple, optional): (H, W) patch grid at the
            backbone's image size.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 num_tokens: int,
                 embed_dims: Optional[int] = None,
                 num_layers: Optional[int] = None,
                 patch_size: Optional[Union[int, Sequence[int]]] = None,
                 patch_grid: Optional[Union[int, Sequence[int]]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if not isinstance(num_tokens, int) or num_tokens < 1:
            raise ValueError(
                f'{name}: num_tokens must be a positive integer, got '
                f'{num_tokens!r}.')
        missing = [
            key for key, value in dict(
                embed_dims=embed_dims,
                num_layers=num_layers,
                patch_size=patch_size,
                patch_grid=patch_grid).items() if value is None
        ]
        if missing:
            raise ValueError(
                f'{name} needs the backbone geometry {missing}. Build it '
                'inside a PromptedClassifier (which fills these in from the '
                'backbone) or pass them explicitly.')
        self.num_tokens = num_tokens
        self.embed_dims = int(embed_dims)
        self.num_layers = int(num_layers)
        self.patch_size = to_2tuple(patch_size)
        self.patch_grid = tuple(to_2tuple(patch_grid))

    def get_prompts(self, index: int, tokens: torch.Tensor, hw: tuple,
                    num_prefix_tokens: int) -> Optional[torch.Tensor]:
        """The prompts block ``index`` sees, or None to keep the current ones.

        Args:
            index (int): Index of the block about to run.
            tokens (Tensor): The running sequence without prompt tokens,
                ``(B, c + N, d)``.
            hw (tuple): The (H, W) patch grid of this input.
            num_prefix_tokens (int): c.

        Returns:
            Tensor | None: ``(B, p, d)`` prompts to place in the prompt slots,
            or None to let the prompts from the previous block flow on (at
            block 0, None means the block sees no prompts).
        """
        raise NotImplementedError

    def check_input(self, hw: tuple) -> None:
        """Validate the input's patch grid. Override where it matters."""

    def forward_backbone(self, adapter: BackboneAdapter,
                         inputs: torch.Tensor) -> tuple:
        """Run the backbone on ``inputs`` with this neck's prompts.

        Args:
            adapter (BackboneAdapter): Adapter bound to the backbone.
            inputs (Tensor): Images ``(B, 3, H, W)``.

        Returns:
            tuple: What the backbone's ``forward`` returns, one entry per
            ``out_indices`` element, computed with prompts.
        """
        return run_backbone(adapter, inputs, self)

    def forward(self, inputs):
        """After the backbone the prompt neck is the identity."""
        return inputs


def remove_prompts(x: torch.Tensor, num_prefix_tokens: int,
                   num_prompts: int) -> torch.Tensor:
    """Drop the ``num_prompts`` tokens that follow the prefix tokens."""
    if num_prompts == 0:
        return x
    return torch.cat(
        (x[:, :num_prefix_tokens], x[:, num_prefix_tokens + num_prompts:]),
        dim=1)


def run_backbone(adapter: BackboneAdapter,
                 inputs: torch.Tensor,
                 neck: Optional[BasePromptNeck] = None) -> tuple:
    """Run a backbone block by block, with ``neck``'s prompts if given.

    Before each block the neck's prompts (if it returns any) are placed
    right after the prefix tokens, replacing the previous block's prompt
    tokens; before each output is formatted the prompts are removed. With
    ``neck=None`` this is exactly the backbone's own unmasked forward (for
    ``MAEViT`` that is the forward without random masking).

    Args:
        adapter (BackboneAdapter): Adapter bound to the backbone.
        inputs (Tensor): Images ``(B, 3, H, W)``.
        neck (BasePromptNeck, optional): The prompt neck.

    Returns:
        tuple: One formatted output per ``out_indices`` element.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> from vapt_mm.models.backbones import build_backbone_adapter
        >>> vit = VisionTransformer(arch='deit-tiny', img_size=32,
        ...                         patch_size=8).eval()
        >>> x = torch.rand(1, 3, 32, 32)
        >>> out = run_backbone(build_backbone_adapter(vit), x)
        >>> torch.equal(out[0], vit(x)[0])
        True
    """
    x, hw = adapter.embed(inputs)
    if neck is not None:
        neck.check_input(hw)
    prefix = adapter.num_prefix_tokens
    num_prompts = 0  # prompt tokens currently in ``x``
    outs = []
    for index, block in enumerate(adapter.blocks):
        if neck is not None:
            tokens = remove_prompts(x, prefix, num_prompts)
            prompts = neck.get_prompts(index, tokens, hw, prefix)
            if prompts is not None:
                x = torch.cat((tokens[:, :prefix], prompts.to(tokens.dtype),
                               tokens[:, prefix:]),
                              dim=1)
                num_prompts = prompts.shape[1]
        x = adapter.after_block(index, block(x))
        if index in adapter.out_indices:
            outs.append(
                adapter.format_output(
                    remove_prompts(x, prefix, num_prompts), hw))
    return tuple(outs)
