"""Running a backbone block by block with a prompt neck's prompts.

This module owns the prompted forward: the token layout
``[prefix (c) | prompts (p) | patches (N)]``, the one decision which blocks
take the fast path (:func:`plan_blocks`) and the block loop
(:func:`run_backbone`) with its two steps, :func:`plain_step` and
:func:`fast_step`. ``docs/method.md`` maps each method's equations to it.

It talks to the backbone only through a backbone adapter (embedding, the
blocks, what follows each block, output formatting, the parts of a block)
and to the neck only through its prompt contract (``replaces_prompts``,
``get_prompts``, ``prompts_are_static``, ``check_input`` and the options
``fast_path`` and ``with_cp``): it imports neither, so models/utils stays
below backbones and necks in the import order.
"""
from typing import List, NamedTuple, Optional, Sequence

import torch
from torch.utils.checkpoint import checkpoint

from ...utils.user_errors import ConfigTypeError
from .prompt_kv_attention import (BlockParts, StaticPromptKVCache,
                                  block_with_prompt_kv, prompt_key_values)

__all__ = [
    'BlockStep', 'plan_blocks', 'insert_prompts', 'remove_prompts',
    'plain_step', 'fast_step', 'run_backbone'
]


class BlockStep(NamedTuple):
    """How one block runs.

    Args:
        fresh (bool): The neck gives fresh prompts before this block; they
            replace whatever prompt tokens the sequence carries.
        fast_parts (BlockParts, optional): Set when the block's outputs at
            the prompt positions are discarded and the block supports the
            fast path: the block then runs with the prompts as keys and
            values only.
    """
    fresh: bool
    fast_parts: Optional[BlockParts]


def plan_blocks(adapter, neck) -> List[BlockStep]:
    """Decide, once per forward, how each block runs.

    A block's prompt outputs are *discarded* when it has prompts and either
    it is the last block or the next block gets fresh prompts. Such a block
    takes the fast path when ``neck.fast_path`` is not False and the
    adapter returns its parts; ``neck.fast_path=True`` on a block without
    parts is an error.

    Args:
        adapter (BackboneAdapter): Adapter bound to the backbone.
        neck (BasePromptNeck, optional): The prompt neck; None plans the
            plain, prompt-free forward.

    Returns:
        list[BlockStep]: One step per block.

    Example:
        >>> steps = plan_blocks(adapter, vpt_deep_neck)  # doctest: +SKIP
        >>> all(s.fresh and s.fast_parts is not None for s in steps)
        True
    """
    blocks = adapter.blocks
    if neck is None:
        return [BlockStep(False, None) for _ in blocks]
    steps = []
    has_prompts = False
    for index, block in enumerate(blocks):
        fresh = neck.replaces_prompts(index)
        has_prompts = has_prompts or fresh
        discarded = has_prompts and (index == len(blocks) - 1
                                     or neck.replaces_prompts(index + 1))
        parts = None
        if discarded and neck.fast_path is not False:
            parts = adapter.prompt_kv_parts(block)
            if parts is None and neck.fast_path:
                raise ConfigTypeError(
                    f'{type(neck).__name__}(fast_path=True): blocks of type '
                    f'{type(block).__name__} cannot take prompts as keys '
                    'and values only. Use fast_path=None (automatic) or '
                    'False.')
        steps.append(BlockStep(fresh, parts))
    return steps


def insert_prompts(x: torch.Tensor, prompts: torch.Tensor,
                   num_prefix_tokens: int) -> torch.Tensor:
    """Put ``prompts`` right after the prefix tokens of ``x``.

    Example:
        >>> x = torch.arange(4.).view(1, 4, 1)
        >>> insert_prompts(x, torch.full((1, 2, 1), 9.), 1).flatten().tolist()
        [0.0, 9.0, 9.0, 1.0, 2.0, 3.0]
    """
    return torch.cat((x[:, :num_prefix_tokens], prompts.to(x.dtype),
                      x[:, num_prefix_tokens:]),
                     dim=1)


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


def plain_step(block: torch.nn.Module, x: torch.Tensor,
               prompts: Optional[torch.Tensor], num_prefix_tokens: int,
               with_cp: bool = False) -> torch.Tensor:
    """Run ``block`` on the whole sequence, after inserting fresh prompts.

    Args:
        block (nn.Module): The block.
        x (Tensor): The sequence; prompt-free when ``prompts`` is given.
        prompts (Tensor, optional): Fresh prompts ``(B, p, d)``.
        num_prefix_tokens (int): c.
        with_cp (bool): Activation checkpointing.

    Returns:
        Tensor: The block's output, prompt positions included.
    """
    if prompts is not None:
        x = insert_prompts(x, prompts, num_prefix_tokens)
    return _call(with_cp, block, x)


def fast_step(parts: BlockParts, tokens: torch.Tensor,
              prompt_kv: Sequence[torch.Tensor], num_prefix_tokens: int,
              with_cp: bool = False) -> torch.Tensor:
    """Run a block on the prompt-free ``tokens`` with prompt keys/values.

    Args:
        parts (BlockParts): The block.
        tokens (Tensor): Prefix and patch tokens ``(B, c + N, d)``.
        prompt_kv (tuple[Tensor, Tensor]): The prompts' keys and values.
        num_prefix_tokens (int): c.
        with_cp (bool): Activation checkpointing.

    Returns:
        Tensor: The block's output at the prefix and patch positions.
    """
    prompt_k, prompt_v = prompt_kv
    return _call(with_cp, block_with_prompt_kv, parts, tokens, prompt_k,
                 prompt_v, num_prefix_tokens)


def _tracing() -> bool:
    return (torch.jit.is_tracing() or torch.compiler.is_compiling()
            or torch.compiler.is_exporting())


def run_backbone(adapter,
                 inputs: torch.Tensor,
                 neck=None,
                 kv_cache: Optional[StaticPromptKVCache] = None) -> tuple:
    """Run a backbone block by block, with ``neck``'s prompts if given.

    Before a block that gets fresh prompts, the previous prompt tokens are
    dropped and the new ones are placed right after the prefix tokens;
    before each output is formatted the prompts are removed. With
    ``neck=None`` this is exactly the backbone's own unmasked forward (for
    ``MAEViT`` that is the forward without random masking).

    Args:
        adapter (BackboneAdapter): Adapter bound to the backbone.
        inputs (Tensor): Images ``(B, 3, H, W)``.
        neck (BasePromptNeck, optional): The prompt neck.
        kv_cache (StaticPromptKVCache, optional): Reuse the keys and values
            of static prompts on the fast path; used only in eval mode
            without autograd (and never while tracing or exporting).

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
    steps = plan_blocks(adapter, neck)
    with_cp = neck is not None and neck.with_cp
    use_cache = (kv_cache is not None and neck is not None
                 and not neck.training and not torch.is_grad_enabled()
                 and not _tracing())
    prefix = adapter.num_prefix_tokens
    num_prompts = 0  # prompt tokens currently in ``x``
    outs = []
    for index, (block, step) in enumerate(zip(adapter.blocks, steps)):
        prompts = None
        if step.fresh:
            x = remove_prompts(x, prefix, num_prompts)
            num_prompts = 0
            prompts = neck.get_prompts(index, x, hw, prefix)
        if step.fast_parts is None:
            x = plain_step(block, x, prompts, prefix, with_cp)
            if prompts is not None:
                num_prompts = prompts.shape[1]
        else:
            if prompts is None:  # prompts flowing into the last block
                prompts = x[:, prefix:prefix + num_prompts]
                x = remove_prompts(x, prefix, num_prompts)
            if use_cache and step.fresh and neck.prompts_are_static(index):
                kv = kv_cache.key_values(index, step.fast_parts, prompts)
            else:
                kv = prompt_key_values(step.fast_parts, prompts)
            x = fast_step(step.fast_parts, x, kv, prefix, with_cp)
            num_prompts = 0
        x = adapter.after_block(index, x)
        if index in adapter.out_indices:
            outs.append(
                adapter.format_output(
                    remove_prompts(x, prefix, num_prompts), hw))
    return tuple(outs)
