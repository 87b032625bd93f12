"""Adapters for mmpretrain's plain ViT family.

Each adapter reproduces, step for step, what its backbone's ``forward`` does
before the first block and after each block, so that a prompt neck with no
prompts gives exactly the backbone's own outputs (a test checks this for
every family and output type).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model.weight_init import PretrainedInit
from mmpretrain.models.backbones import (DeiT3, DistilledVisionTransformer,
                                         VisionTransformer)
from mmpretrain.models.backbones.deit3 import DeiT3TransformerEncoderLayer
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.selfsup.mae import MAEViT
from mmpretrain.models.selfsup.mocov3 import MoCoV3ViT
from mmpretrain.models.utils import resize_pos_embed

from ..utils.prompt_kv_attention import BlockParts, vit_block_parts
from .base_adapter import BackboneAdapter, register_backbone_adapter


@register_backbone_adapter(VisionTransformer, MoCoV3ViT)
class VisionTransformerAdapter(BackboneAdapter):
    """Adapter for mmpretrain ``VisionTransformer`` and its plain variants.

    Covers every ``arch`` (including CLIP-style ``pre_norm=True`` and
    DINOv2-style layer scale, which live inside the blocks) and
    ``MoCoV3ViT`` (a ViT with a fixed sin-cos position embedding). Its
    ``TransformerEncoderLayer`` blocks take the fast path.

    Args:
        backbone (VisionTransformer): The backbone to drive.

    Example:
        >>> import torch
        >>> from mmpretrain.models import VisionTransformer
        >>> vit = VisionTransformer(arch='deit-tiny', img_size=32,
        ...                         patch_size=8)
        >>> adapter = VisionTransformerAdapter(vit)
        >>> tokens, hw = adapter.embed(torch.rand(1, 3, 32, 32))
        >>> tokens.shape, hw
        (torch.Size([1, 17, 192]), (4, 4))
    """

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.backbone.layers

    @property
    def num_prefix_tokens(self) -> int:
        return self.backbone.num_extra_tokens

    @property
    def embed_dims(self) -> int:
        return self.backbone.embed_dims

    @property
    def patch_size(self) -> Tuple[int, int]:
        return tuple(self.backbone.patch_embed.projection.kernel_size)

    @property
    def patch_grid(self) -> Tuple[int, int]:
        return tuple(self.backbone.patch_resolution)

    @property
    def out_indices(self) -> Sequence[int]:
        return self.backbone.out_indices

    def _add_pos_embed(self, x: torch.Tensor, hw: tuple,
                       num_extra_tokens: int) -> torch.Tensor:
        backbone = self.backbone
        return x + resize_pos_embed(
            backbone.pos_embed,
            backbone.patch_resolution,
            hw,
            mode=backbone.interpolate_mode,
            num_extra_tokens=num_extra_tokens)

    def embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        backbone = self.backbone
        x, hw = backbone.patch_embed(inputs)
        if backbone.cls_token is not None:
            cls_token = backbone.cls_token.expand(x.shape[0], -1, -1)
            x = torch.cat((cls_token, x), dim=1)
        x = self._add_pos_embed(x, hw, backbone.num_extra_tokens)
        x = backbone.drop_after_pos(x)
        x = backbone.pre_norm(x)
        return x, tuple(hw)

    def after_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        backbone = self.backbone
        if index == len(backbone.layers) - 1 and backbone.final_norm:
            x = backbone.ln1(x)
        return x

    def format_output(self, x: torch.Tensor, hw: tuple):
        return self.backbone._format_output(x, hw)

    def prompt_kv_parts(self, block: nn.Module) -> Optional[BlockParts]:
        if type(block) is not TransformerEncoderLayer:
            return None
        return vit_block_parts(block.attn, block.ln1, block.ln2, block.ffn)


@register_backbone_adapter(MAEViT)
class MAEViTAdapter(VisionTransformerAdapter):
    """Adapter for ``MAEViT``: its unmasked forward is the ViT forward.

    Quirk: mmpretrain 1.2.0's ``MAEViT.init_weights`` loads the
    ``Pretrained`` checkpoint and then re-initialises ``cls_token``,
    ``pos_embed`` and the patch projection for pre-training;
    :meth:`after_init_weights` loads the pretrained file again.

    Args:
        backbone (MAEViT): The backbone to drive.

    Example:
        >>> from mmpretrain.models.selfsup.mae import MAEViT
        >>> vit = MAEViT(arch='b', img_size=32, patch_size=8)
        >>> MAEViTAdapter(vit).patch_grid
        (4, 4)
    """

    def after_init_weights(self) -> None:
        init_cfg = getattr(self.backbone, 'init_cfg', None)
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            PretrainedInit(
                checkpoint=init_cfg['checkpoint'],
                prefix=init_cfg.get('prefix'))(self.backbone)


@register_backbone_adapter(DistilledVisionTransformer)
class DistilledVisionTransformerAdapter(VisionTransformerAdapter):
    """Adapter for DeiT's ``DistilledVisionTransformer``.

    Two prefix tokens (CLS, distillation); no pre-norm. With
    ``out_type='cls_token'`` the backbone returns both tokens, as usual.

    Args:
        backbone (DistilledVisionTransformer): The backbone to drive.

    Example:
        >>> from mmpretrain.models import DistilledVisionTransformer
        >>> vit = DistilledVisionTransformer(arch='deit-tiny', img_size=32,
        ...                                  patch_size=8)
        >>> DistilledVisionTransformerAdapter(vit).num_prefix_tokens
        2
    """

    def embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        backbone = self.backbone
        x, hw = backbone.patch_embed(inputs)
        batch = x.shape[0]
        x = torch.cat((backbone.cls_token.expand(batch, -1, -1),
                       backbone.dist_token.expand(batch, -1, -1), x),
                      dim=1)
        x = self._add_pos_embed(x, hw, backbone.num_extra_tokens)
        x = backbone.drop_after_pos(x)
        return x, tuple(hw)


@register_backbone_adapter(DeiT3)
class DeiT3Adapter(VisionTransformerAdapter):
    """Adapter for ``DeiT3``: the position embedding covers the patches
    only, and the CLS token is added after it. Its blocks normalise the FFN
    input with ``ln1`` (as ``DeiT3TransformerEncoderLayer.forward`` does in
    mmpretrain 1.2.0), so the fast path uses ``ln1`` twice.

    Args:
        backbone (DeiT3): The backbone to drive.

    Example:
        >>> from mmpretrain.models import DeiT3
        >>> vit = DeiT3(arch='s', img_size=32, patch_size=8)
        >>> DeiT3Adapter(vit).patch_grid
        (4, 4)
    """

    def embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        backbone = self.backbone
        x, hw = backbone.patch_embed(inputs)
        x = self._add_pos_embed(x, hw, 0)
        x = backbone.drop_after_pos(x)
        if backbone.cls_token is not None:
            cls_token = backbone.cls_token.expand(x.shape[0], -1, -1)
            x = torch.cat((cls_token, x), dim=1)
        return x, tuple(hw)

    def prompt_kv_parts(self, block: nn.Module) -> Optional[BlockParts]:
        if type(block) is not DeiT3TransformerEncoderLayer:
            return None
        return vit_block_parts(block.attn, block.ln1, block.ln1, block.ffn)
