"""Prompt tokens as keys and values only: the attention of the fast path.

In deep prompt tuning the outputs a block computes at the prompt positions
are thrown away (the next block overwrites the prompt slots, or the prompts
are removed after the last block). Those positions still matter as keys and
values of the attention. :func:`block_with_prompt_kv` computes exactly the
block's outputs at the other positions: queries, attention rows, output
projection, second norm and FFN only for the prefix and patch tokens; the
prompts pass only the first norm and the key/value projection
(:func:`prompt_key_values`). ``docs/method.md`` ("The fast path") gives the
argument of exactness.

Which blocks qualify is the backbone adapter's business
(:meth:`~vapt_mm.models.backbones.BackboneAdapter.prompt_kv_parts`); when a
block takes this path is decided in one place,
:func:`vapt_mm.models.utils.prompted_forward.plan_blocks`.
"""
from typing import Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.utils import MultiheadAttention

__all__ = [
    'BlockParts', 'vit_block_parts', 'prompt_key_values',
    'block_with_prompt_kv', 'StaticPromptKVCache'
]


class BlockParts(NamedTuple):
    """The pieces of ``x = x + attn(norm_attn(x)); x = ffn(norm_ffn(x), x)``.

    Args:
        attn (MultiheadAttention): The attention (with its qkv projection).
        norm_attn (nn.Module): The norm before the attention.
        norm_ffn (nn.Module): The norm before the FFN.
        ffn (nn.Module): The FFN, called as ``ffn(x, identity=x)``.
    """
    attn: nn.Module
    norm_attn: nn.Module
    norm_ffn: nn.Module
    ffn: nn.Module


def vit_block_parts(attn: nn.Module, norm_attn: nn.Module,
                    norm_ffn: nn.Module,
                    ffn: nn.Module) -> Optional[BlockParts]:
    """The parts of a pre-norm block, if its attention suits the fast path.

    The attention must be mmpretrain's plain ``MultiheadAttention`` (no
    value shortcut): :func:`block_with_prompt_kv` replays its forward.

    Args:
        attn (nn.Module): The block's attention.
        norm_attn (nn.Module): The norm before the attention.
        norm_ffn (nn.Module): The norm before the FFN.
        ffn (nn.Module): The FFN.

    Returns:
        BlockParts | None: None when the attention is of another kind.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> block = VisionTransformer(arch='deit-tiny').layers[0]
        >>> parts = vit_block_parts(block.attn, block.ln1, block.ln2,
        ...                         block.ffn)
        >>> parts.norm_ffn is block.ln2
        True
    """
    if type(attn) is not MultiheadAttention or attn.v_shortcut:
        return None
    return BlockParts(attn, norm_attn, norm_ffn, ffn)


def prompt_key_values(parts: BlockParts,
                      prompts: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Keys and values of the prompt tokens, ``(B, heads, p, head_dims)``.

    Only the key and value thirds of the qkv projection are computed.

    Args:
        parts (BlockParts): The block.
        prompts (Tensor): Prompt tokens ``(B, p, d)`` as they enter the
            block.

    Returns:
        tuple[Tensor, Tensor]: Keys and values.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> block = VisionTransformer(arch='deit-tiny').layers[0]
        >>> parts = vit_block_parts(block.attn, block.ln1, block.ln2,
        ...                         block.ffn)
        >>> k, v = prompt_key_values(parts, torch.rand(2, 5, 192))
        >>> k.shape
        torch.Size([2, 3, 5, 64])
    """
    attn = parts.attn
    dims = attn.embed_dims
    weight = attn.qkv.weight[dims:]
    bias = attn.qkv.bias[dims:] if attn.qkv.bias is not None else None
    batch, num_prompts, _ = prompts.shape
    kv = F.linear(parts.norm_attn(prompts), weight, bias)
    kv = kv.reshape(batch, num_prompts, 2, attn.num_heads,
                    attn.head_dims).permute(2, 0, 3, 1, 4)
    return kv[0], kv[1]


def block_with_prompt_kv(parts: BlockParts,
                         tokens: torch.Tensor,
                         prompt_k: Optional[torch.Tensor],
                         prompt_v: Optional[torch.Tensor],
                         num_prefix_tokens: int,
                         attn_mask: Optional[torch.Tensor] = None
                         ) -> torch.Tensor:
    """One block over ``tokens`` with extra prompt keys and values.

    Args:
        parts (BlockParts): The block.
        tokens (Tensor): Prefix and patch tokens ``(B, c + N, d)``.
        prompt_k (Tensor, optional): Prompt keys ``(B, heads, p,
            head_dims)``; None replays the plain block over ``tokens``.
        prompt_v (Tensor, optional): Prompt values, same shape.
        num_prefix_tokens (int): c; the prompt keys sit after the prefix,
            as in the plain token layout.
        attn_mask (Tensor, optional): Additive attention mask over the keys
            (``-inf`` hides a key), broadcastable to ``(B, heads, queries,
            keys)``; the multi-task forward hides padded prompt slots with
            it. Defaults to None.

    Returns:
        Tensor: The block's output at the prefix and patch positions, equal
        to the plain block's output at those positions.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> block = VisionTransformer(arch='deit-tiny').layers[0].eval()
        >>> parts = vit_block_parts(block.attn, block.ln1, block.ln2,
        ...                         block.ffn)
        >>> tokens, prompts = torch.rand(1, 5, 192), torch.rand(1, 2, 192)
        >>> k, v = prompt_key_values(parts, prompts)
        >>> out = block_with_prompt_kv(parts, tokens, k, v, 1)
        >>> full = block(torch.cat((tokens[:, :1], prompts,
        ...                         tokens[:, 1:]), 1))
        >>> torch.allclose(out[:, 1:], full[:, 3:], atol=1e-5)
        True
    """
    attn = parts.attn
    batch, length, _ = tokens.shape
    qkv = attn.qkv(parts.norm_attn(tokens)).reshape(
        batch, length, 3, attn.num_heads,
        attn.head_dims).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    c = num_prefix_tokens
    if prompt_k is not None:
        k = torch.cat((k[:, :, :c], prompt_k.to(k.dtype), k[:, :, c:]), 2)
        v = torch.cat((v[:, :, :c], prompt_v.to(v.dtype), v[:, :, c:]), 2)
    attn_drop = attn.attn_drop if attn.training else 0.
    out = attn.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=attn_drop)
    out = out.transpose(1, 2).reshape(batch, length, attn.embed_dims)
    out = attn.out_drop(attn.gamma1(attn.proj_drop(attn.proj(out))))
    x = tokens + out
    return parts.ffn(parts.norm_ffn(x), identity=x)


class StaticPromptKVCache:
    """Keys and values of static prompts, computed once per block.

    Static prompts are the same for every input, so at inference their keys
    and values are too. The cache keeps, per block index, the prompts it
    saw and their keys and values for one sample, and expands them to the
    batch.

    Invalidation rule (explicit, no private tensor state is read):

    * an entry is reused only while the prompts it was computed from are
      equal (``torch.equal``, p x d values: negligible next to a block) to
      the prompts of this call, so any change of the prompts, in place or
      by loading, recomputes it;
    * the owner (:class:`~vapt_mm.models.PromptedClassifier`) calls
      :meth:`clear` whenever the frozen block weights may have changed or
      moved: ``train()``/``eval()``, ``load_state_dict`` and device or dtype
      moves (``to``, ``half``, ``cuda``). After editing backbone weights in
      place in eval mode, call ``model.prompt_kv_cache.clear()``.

    Use it only in eval mode without autograd, where prompts carry no
    dropout and nothing is trained (:func:`~vapt_mm.models.utils.\
prompted_forward.run_backbone` checks this).

    Example:
        >>> cache = StaticPromptKVCache()
        >>> k, v = cache.key_values(0, parts, prompts)  # doctest: +SKIP
        >>> len(cache)
        1
    """

    def __init__(self) -> None:
        self._entries: Dict[int, Tuple[torch.Tensor, torch.Tensor,
                                       torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, index: int) -> bool:
        return index in self._entries

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def key_values(self, index: int, parts: BlockParts,
                   prompts: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Keys and values of ``prompts`` at block ``index``, from the cache
        when its entry was computed from equal prompts.

        Args:
            index (int): The block's index.
            parts (BlockParts): The block.
            prompts (Tensor): ``(B, p, d)``, the same prompts for every
                sample.

        Returns:
            tuple[Tensor, Tensor]: Keys and values expanded to the batch.
        """
        one = prompts[:1]
        entry = self._entries.get(index)
        if (entry is None or entry[0].shape != one.shape
                or entry[0].dtype != one.dtype
                or entry[0].device != one.device
                or not torch.equal(entry[0], one)):
            k, v = prompt_key_values(parts, one)
            entry = (one.detach().clone(), k, v)
            self._entries[index] = entry
        _, k, v = entry
        batch = prompts.shape[0]
        return k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)
