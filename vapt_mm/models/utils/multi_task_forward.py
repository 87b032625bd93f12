"""One backbone pass for a batch whose samples belong to different tasks.

Each task brings its own prompt neck (VPT-shallow, VPT-deep, VAPT, any
``num_tokens``); the frozen backbone is shared. The batch runs through the
blocks once, in the token layout of :mod:`.prompted_forward` with
``P`` prompt *slots*, ``P`` the largest ``num_tokens`` of the tasks present:

    ``[prefix (c) | slots (P) | patches (N)]``

A sample whose task has ``p`` prompts uses slots ``[c, c + p)``; the other
``P - p`` slots are padding. Padding is hidden as a key from every query by
an additive attention mask (``-inf`` before the softmax, so those keys get a
weight of exactly zero), and what a block computes at padded slots is never
read: the real tokens of a sample therefore see exactly the keys and values
its task's single-task model gives them, on the plain path (shallow prompts
flowing from block to block) and on the fast path (prompts as keys and
values only) alike. With one ``p`` for the whole batch no mask is used.

The batch comes grouped by task (the samples of the first task, then those
of the second, ...), so each task's samples are one contiguous slice of
every tensor and no block needs a gather; the classifier sorts its batch
once before the backbone.

Per block, each task gets fresh prompts where its neck says so
(``replaces_prompts``): static ones from its parameters, VAPT's adaptive
ones from its own samples' tokens; other tasks' prompts flow on. The block
runs on the fast path when every task that has prompts there would run it
on the fast path alone (:func:`~.prompted_forward.plan_blocks` of its
neck, so ``fast_path=False`` on any task in the batch keeps the batch on
the plain path); otherwise the whole batch runs the plain path, which
gives the same outputs.
"""
import inspect
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .prompt_kv_attention import (BlockParts, block_with_prompt_kv,
                                  prompt_key_values)
from .prompted_forward import insert_prompts, plan_blocks, remove_prompts

__all__ = [
    'TaskGroup', 'MixedBlockStep', 'plan_mixed_blocks', 'slot_key_mask',
    'run_backbone_multi_task'
]


class TaskGroup(NamedTuple):
    """The samples of one task in a batch grouped by task.

    Args:
        neck (BasePromptNeck): The task's prompt neck.
        size (int): How many consecutive samples of the batch belong to the
            task.
    """
    neck: nn.Module
    size: int


class MixedBlockStep(NamedTuple):
    """How one block runs for a mixed batch.

    Args:
        fresh (tuple[bool]): Per task: fresh prompts before this block.
        fast_parts (BlockParts, optional): Set when the whole batch runs
            the block with its prompts as keys and values only.
        parts (BlockParts, optional): The block's parts, for the plain path
            with a key mask; None for blocks of other kinds.
        takes_mask (bool): ``block(x, attn_mask=...)`` is accepted (timm
            blocks), for a plain path with a key mask without ``parts``.
    """
    fresh: Tuple[bool, ...]
    fast_parts: Optional[BlockParts]
    parts: Optional[BlockParts]
    takes_mask: bool


def _takes_attn_mask(block: nn.Module) -> bool:
    try:
        return 'attn_mask' in inspect.signature(block.forward).parameters
    except (TypeError, ValueError):
        return False


def plan_mixed_blocks(adapter,
                      necks: Sequence[nn.Module]) -> List[MixedBlockStep]:
    """Decide, once per forward, how each block runs for a mixed batch.

    Each neck is planned on its own with
    :func:`~.prompted_forward.plan_blocks` (which also raises for
    ``fast_path=True`` on blocks that cannot take it). A block runs the
    fast path for the batch when at least one task has prompts there and
    every task that has prompts there plans the fast path for it.

    Args:
        adapter (BackboneAdapter): Adapter bound to the shared backbone.
        necks (Sequence[BasePromptNeck]): One prompt neck per task.

    Returns:
        list[MixedBlockStep]: One step per block.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> from vapt_mm.models.backbones import build_backbone_adapter
        >>> from vapt_mm.models.necks import build_prompt_neck
        >>> adapter = build_backbone_adapter(VisionTransformer(
        ...     arch='deit-tiny', img_size=32, patch_size=8))
        >>> shallow = build_prompt_neck(dict(type='VPTNeck', num_tokens=2),
        ...                             adapter)
        >>> deep = build_prompt_neck(
        ...     dict(type='VPTNeck', num_tokens=5, deep=True), adapter)
        >>> steps = plan_mixed_blocks(adapter, [shallow, deep])
        >>> [s.fast_parts is not None for s in steps][-3:]
        [False, False, True]
        >>> [s.fast_parts is not None
        ...  for s in plan_mixed_blocks(adapter, [deep])][-3:]
        [True, True, True]
    """
    plans = [plan_blocks(adapter, neck) for neck in necks]
    has_prompts = [False] * len(necks)
    steps = []
    for index, block in enumerate(adapter.blocks):
        fresh = tuple(plan[index].fresh for plan in plans)
        has_prompts = [had or new for had, new in zip(has_prompts, fresh)]
        prompted = [plan[index] for plan, has in zip(plans, has_prompts)
                    if has]
        fast = bool(prompted) and all(step.fast_parts is not None
                                      for step in prompted)
        parts = adapter.prompt_kv_parts(block)
        steps.append(
            MixedBlockStep(fresh, prompted[0].fast_parts if fast else None,
                           parts, parts is None and _takes_attn_mask(block)))
    return steps


def slot_key_mask(valid: torch.Tensor, num_prefix_tokens: int,
                  num_patches: int,
                  dtype: torch.dtype) -> Optional[torch.Tensor]:
    """Additive attention mask hiding the padded prompt slots as keys.

    Args:
        valid (Tensor): ``(B, P)`` bool, True where a slot holds a real
            prompt of the sample's task.
        num_prefix_tokens (int): c.
        num_patches (int): N.
        dtype (torch.dtype): The attention's dtype.

    Returns:
        Tensor | None: ``(B, 1, 1, c + P + N)``, 0 for visible keys and
        ``-inf`` for padded slots; None when no slot is padded.

    Example:
        >>> valid = torch.tensor([[True, True], [True, False]])
        >>> slot_key_mask(valid, 1, 1, torch.float32)[:, 0, 0].tolist()
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -inf, 0.0]]
    """
    if bool(valid.all()):
        return None
    batch = valid.shape[0]
    slots = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    slots = slots.masked_fill(~valid, float('-inf'))
    mask = F.pad(slots, (num_prefix_tokens, num_patches))
    return mask.view(batch, 1, 1, -1)


def _masked_plain_step(block: nn.Module, step: MixedBlockStep,
                       x: torch.Tensor, mask: Optional[torch.Tensor],
                       num_prefix_tokens: int) -> torch.Tensor:
    if mask is None:
        return block(x)
    if step.parts is not None:
        return block_with_prompt_kv(step.parts, x, None, None,
                                    num_prefix_tokens, attn_mask=mask)
    if step.takes_mask:
        return block(x, attn_mask=mask.to(x.dtype))
    raise TypeError(
        f'Blocks of type {type(block).__name__} take no attention mask, so '
        'tasks with different num_tokens (or prompts at different blocks) '
        'cannot share one batch on this backbone: give every task the same '
        'num_tokens and prompt placement, or run the tasks in separate '
        'batches.')


def _assemble_slots(groups: Sequence[TaskGroup], fresh: Sequence[bool],
                    old: Optional[torch.Tensor], tokens: torch.Tensor,
                    index: int, hw: tuple, num_prefix_tokens: int,
                    num_slots: int) -> torch.Tensor:
    """The ``(B, P, d)`` slot contents before block ``index``: fresh
    prompts of the tasks that get them (zero-padded to P), the flowing
    slots (or zeros) of the others."""
    pieces = []
    start = 0
    for group, is_fresh in zip(groups, fresh):
        rows = slice(start, start + group.size)
        start += group.size
        if is_fresh:
            prompts = group.neck.get_prompts(index, tokens[rows], hw,
                                             num_prefix_tokens)
            prompts = prompts.to(tokens.dtype)
            if prompts.shape[1] < num_slots:
                prompts = F.pad(prompts,
                                (0, 0, 0, num_slots - prompts.shape[1]))
            pieces.append(prompts)
        elif old is not None:
            pieces.append(old[rows])
        else:
            pieces.append(
                tokens.new_zeros(group.size, num_slots, tokens.shape[-1]))
    return torch.cat(pieces) if len(pieces) > 1 else pieces[0]


def run_backbone_multi_task(adapter, inputs: torch.Tensor,
                            groups: Sequence[TaskGroup]) -> tuple:
    """Run the shared backbone once over a batch of several tasks' samples.

    Args:
        adapter (BackboneAdapter): Adapter bound to the shared backbone.
        inputs (Tensor): Images ``(B, 3, H, W)``, grouped by task: the
            first ``groups[0].size`` belong to the first task, and so on.
        groups (Sequence[TaskGroup]): The tasks present, in batch order;
            their sizes add up to B.

    Returns:
        tuple: One formatted output per ``out_indices`` element, for the
        whole batch in input order. Sample ``s`` of task ``t`` gets what
        ``run_backbone(adapter, inputs[s:s+1], groups[t].neck)`` gives, up
        to floating-point rounding.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> from vapt_mm.models.backbones import build_backbone_adapter
        >>> from vapt_mm.models.necks import build_prompt_neck
        >>> from vapt_mm.models.utils import run_backbone
        >>> vit = VisionTransformer(arch='deit-tiny', img_size=32,
        ...                         patch_size=8)
        >>> adapter = build_backbone_adapter(vit)
        >>> shallow = build_prompt_neck(dict(type='VPTNeck', num_tokens=2),
        ...                             adapter)
        >>> vapt = build_prompt_neck(dict(type='VAPTNeck', num_tokens=5),
        ...                          adapter)
        >>> for module in (vit, shallow, vapt):
        ...     _ = module.eval()
        >>> images = torch.rand(3, 3, 32, 32)
        >>> feats = run_backbone_multi_task(
        ...     adapter, images, [TaskGroup(shallow, 2), TaskGroup(vapt, 1)])
        >>> alone = run_backbone(adapter, images[2:], vapt)
        >>> torch.allclose(feats[0][2], alone[0][0], atol=1e-5)
        True
    """
    if not groups:
        raise ValueError('run_backbone_multi_task needs at least one task.')
    x, hw = adapter.embed(inputs)
    batch = x.shape[0]
    sizes = [group.size for group in groups]
    if sum(sizes) != batch or min(sizes) < 1:
        raise ValueError(
            'run_backbone_multi_task: the task groups must split the batch '
            f'of {batch} samples into non-empty runs, got sizes {sizes}.')
    for group in groups:
        group.neck.check_input(hw)
    steps = plan_mixed_blocks(adapter, [group.neck for group in groups])
    prefix = adapter.num_prefix_tokens
    num_patches = hw[0] * hw[1]
    width = max(group.neck.num_tokens for group in groups)  # P
    # valid[s, j]: slot j holds a real prompt of sample s's task.
    valid = torch.zeros(batch, width, dtype=torch.bool, device=x.device)
    num_slots = 0  # slots currently in ``x`` (0 or P)
    mask = None  # hides the padded slots; changes only with ``valid``
    outs = []
    for index, (block, step) in enumerate(zip(adapter.blocks, steps)):
        slots = None
        if any(step.fresh):
            old = x[:, prefix:prefix + num_slots] if num_slots else None
            x = remove_prompts(x, prefix, num_slots)
            num_slots = 0
            slots = _assemble_slots(groups, step.fresh, old, x, index, hw,
                                    prefix, width)
            start = 0
            for group, is_fresh in zip(groups, step.fresh):
                if is_fresh:
                    valid[start:start + group.size] = (torch.arange(
                        width, device=x.device) < group.neck.num_tokens)
                start += group.size
            mask = slot_key_mask(valid, prefix, num_patches, x.dtype)
        if step.fast_parts is not None:
            if slots is None:  # prompts flowing into this block
                slots = x[:, prefix:prefix + num_slots]
                x = remove_prompts(x, prefix, num_slots)
            prompt_k, prompt_v = prompt_key_values(step.fast_parts, slots)
            x = block_with_prompt_kv(
                step.fast_parts, x, prompt_k, prompt_v, prefix,
                attn_mask=mask)
            num_slots = 0
        else:
            if slots is not None:
                x = insert_prompts(x, slots, prefix)
                num_slots = width
            x = _masked_plain_step(block, step, x,
                                   mask if num_slots else None, prefix)
        x = adapter.after_block(index, x)
        if index in adapter.out_indices:
            outs.append(
                adapter.format_output(
                    remove_prompts(x, prefix, num_slots), hw))
    return tuple(outs)
