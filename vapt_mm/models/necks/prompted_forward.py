"""Running a backbone block by block with a prompt neck's prompts."""
from typing import Optional

import torch
from torch.utils.checkpoint import checkpoint

from ..backbones import BackboneAdapter
from ..backbones.prompt_kv_block import block_with_prompt_kv
from .base_prompt_neck import BasePromptNeck


def remove_prompts(x: torch.Tensor, num_prefix_tokens: int,
                   num_prompts: int) -> torch.Tensor:
    """Drop the ``num_prompts`` tokens that follow the prefix tokens.

    Example:
        >>> x = torch.arange(6).view(1, 6, 1)
        >>> remove_prompts(x, 1, 2).flatten().tolist()
        [0, 3, 4, 5]
    """
    if num_prompts == 0:
        return x
    return torch.cat(
        (x[:, :num_prefix_tokens], x[:, num_prefix_tokens + num_prompts:]),
        dim=1)


def _call(with_cp: bool, fn, *args):
    if with_cp and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def run_backbone(adapter: BackboneAdapter,
                 inputs: torch.Tensor,
                 neck: Optional[BasePromptNeck] = None) -> tuple:
    """Run a backbone block by block, with ``neck``'s prompts if given.

    Before each block the neck's fresh prompts (if it returns any) are
    placed right after the prefix tokens, replacing the previous block's
    prompt tokens; before each output is formatted the prompts are removed.
    A block whose prompt outputs would be discarded runs on the fast path
    when the neck allows it (see :class:`BasePromptNeck`). With
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
        ...                         patch_size=8)
        >>> vit.eval()
        >>> x = torch.rand(1, 3, 32, 32)
        >>> out = run_backbone(build_backbone_adapter(vit), x)
        >>> torch.equal(out[0], vit(x)[0])
        True
    """
    x, hw = adapter.embed(inputs)
    if neck is not None:
        neck.check_input(hw)
    with_cp = neck is not None and neck.with_cp
    prefix = adapter.num_prefix_tokens
    blocks = adapter.blocks
    num_prompts = 0  # prompt tokens currently in ``x``
    outs = []
    for index, block in enumerate(blocks):
        # Only blocks that receive fresh prompts need the prompt-free
        # sequence (a copy); shallow prompts flow on without it.
        fresh = tokens = None
        if neck is not None and neck.replaces_prompts(index):
            tokens = remove_prompts(x, prefix, num_prompts)
            fresh = neck.get_prompts(index, tokens, hw, prefix)
        if fresh is not None:
            prompts = fresh
        elif num_prompts:
            prompts = x[:, prefix:prefix + num_prompts]
        else:
            prompts = None
        discarded = prompts is not None and (
            index == len(blocks) - 1 or neck.replaces_prompts(index + 1))
        parts = neck.fast_block_parts(adapter, block) if discarded else None
        if parts is not None:
            if tokens is None:  # prompts flowing into the last block
                tokens = remove_prompts(x, prefix, num_prompts)
            prompt_k, prompt_v = neck.prompt_kv(index, parts, prompts,
                                                fresh is not None)
            x = _call(with_cp, block_with_prompt_kv, parts, tokens,
                      prompt_k, prompt_v, prefix)
            num_prompts = 0
        else:
            if fresh is not None:
                x = torch.cat((tokens[:, :prefix], fresh.to(tokens.dtype),
                               tokens[:, prefix:]),
                              dim=1)
                num_prompts = fresh.shape[1]
            x = _call(with_cp, block, x)
        x = adapter.after_block(index, x)
        if index in adapter.out_indices:
            outs.append(
                adapter.format_output(
                    remove_prompts(x, prefix, num_prompts), hw))
    return tuple(outs)
