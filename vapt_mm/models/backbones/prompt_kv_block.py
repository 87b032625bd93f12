"""Run a pre-norm ViT block with prompt tokens that serve only as keys/values.

In deep prompt tuning the outputs a block computes at the prompt positions
are thrown away (the next block overwrites the prompt slots, or the prompts
are removed after the last block). Those positions still matter as keys and
values of the attention. This module computes exactly the outputs at the
other positions: queries, attention rows, output projection, second norm
and FFN only for the prefix and patch tokens; the prompts pass only the
first norm and the key/value projection.
"""
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Type

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.backbones.deit3 import DeiT3TransformerEncoderLayer
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.utils import MultiheadAttention


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


_PARTS: Dict[Type[nn.Module], Callable[[nn.Module], BlockParts]] = {
    TransformerEncoderLayer:
    lambda b: BlockParts(b.attn, b.ln1, b.ln2, b.ffn),
    # DeiT3's block normalises the FFN input with ln1, as its forward does.
    DeiT3TransformerEncoderLayer:
    lambda b: BlockParts(b.attn, b.ln1, b.ln1, b.ffn),
}


def block_parts(block: nn.Module) -> Optional[BlockParts]:
    """The parts of ``block`` if the prompt key/value path supports it.

    Supported: mmpretrain's ``TransformerEncoderLayer`` (ViT, MAE, MoCo v3,
    DeiT, CLIP- and DINOv2-style layers) and ``DeiT3TransformerEncoderLayer``
    whose attention is a plain ``MultiheadAttention`` (no value shortcut).

    Args:
        block (nn.Module): A transformer block.

    Returns:
        BlockParts | None: None when the block is of another kind.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> vit = VisionTransformer(arch='deit-tiny')
        >>> block_parts(vit.layers[0]).norm_ffn is vit.layers[0].ln2
        True
    """
    getter = _PARTS.get(type(block))
    if getter is None:
        return None
    parts = getter(block)
    if type(parts.attn) is not MultiheadAttention or parts.attn.v_shortcut:
        return None
    return parts


def prompt_key_values(parts: BlockParts,
                      prompts: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Keys and values of the prompt tokens, ``(B, heads, p, head_dims)``.

    Only the key and value thirds of the qkv projection are computed.

    Args:
        parts (BlockParts): The block.
        prompts (Tensor): Prompt tokens ``(B, p, d)`` as they enter the
            block.
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


def block_with_prompt_kv(parts: BlockParts, tokens: torch.Tensor,
                         prompt_k: torch.Tensor, prompt_v: torch.Tensor,
                         num_prefix_tokens: int) -> torch.Tensor:
    """One block over ``tokens`` with extra prompt keys and values.

    Args:
        parts (BlockParts): The block.
        tokens (Tensor): Prefix and patch tokens ``(B, c + N, d)``.
        prompt_k (Tensor): Prompt keys ``(B, heads, p, head_dims)``.
        prompt_v (Tensor): Prompt values, same shape.
        num_prefix_tokens (int): c; the prompt keys sit after the prefix,
            as in the plain token layout.

    Returns:
        Tensor: The block's output at the prefix and patch positions, equal
        to the plain block's output at those positions.
    """
    attn = parts.attn
    batch, length, _ = tokens.shape
    qkv = attn.qkv(parts.norm_attn(tokens)).reshape(
        batch, length, 3, attn.num_heads,
        attn.head_dims).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    c = num_prefix_tokens
    k = torch.cat((k[:, :, :c], prompt_k.to(k.dtype), k[:, :, c:]), dim=2)
    v = torch.cat((v[:, :, :c], prompt_v.to(v.dtype), v[:, :, c:]), dim=2)
    attn_drop = attn.attn_drop if attn.training else 0.
    out = attn.scaled_dot_product_attention(q, k, v, dropout_p=attn_drop)
    out = out.transpose(1, 2).reshape(batch, length, attn.embed_dims)
    out = attn.out_drop(attn.gamma1(attn.proj_drop(attn.proj(out))))
    x = tokens + out
    return parts.ffn(parts.norm_ffn(x), identity=x)
