"""Adapter for timm Vision Transformers wrapped by mmpretrain's TIMMBackbone.

mmpretrain's ``TIMMBackbone`` builds any timm model with
``timm.create_model`` (kept as ``backbone.timm_model``), drops its classifier
with ``reset_classifier(0, '')`` and returns ``(timm_model(x), )``. For a
timm ``VisionTransformer`` that is the whole token sequence after the final
norm, ``(B, prefix + H*W, d)``: ``global_pool=''`` pools nothing. The
adapter below replays timm's ``forward_features`` one step at a time so that
a prompt neck can put its tokens between the prefix tokens (CLS, register
tokens) and the patches, and formats the prompt-free result with the timm
model's own ``forward_head``, so an unprompted run equals
``TIMMBackbone.forward`` exactly.

Only the timm classes in :data:`SUPPORTED_TIMM_VIT_CLASSES` are accepted,
matched by exact class like every adapter here; any other timm model
(ResNets, Swin, BEiT/EVA with position terms sized to the token count,
``features_only=True`` wrappers) is refused when the model is built.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.backbones import TIMMBackbone
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import \
    VisionTransformer as TimmVisionTransformer

from ...utils.user_errors import ConfigError, ConfigTypeError
from .base_adapter import BackboneAdapter, register_backbone_adapter

#: timm classes whose ``forward_features`` is patch embedding, prefix tokens
#: and absolute position embedding (``_pos_embed``), patch dropout,
#: ``norm_pre``, a plain stack of blocks and ``norm``. Their attention does
#: not depend on the token count, so extra prompt tokens are well defined.
SUPPORTED_TIMM_VIT_CLASSES = (TimmVisionTransformer,
                              VisionTransformerDistilled)


def _timm_model_name(model: nn.Module) -> str:
    """The timm architecture name of ``model`` (``'vit_base_patch16_224'``),
    or its class name when timm recorded none."""
    inner = getattr(model, 'model', None)  # features_only wrappers
    for candidate in (model, inner):
        cfg = getattr(candidate, 'pretrained_cfg', None) or {}
        if cfg.get('architecture'):
            return cfg['architecture']
    return type(model).__name__


def _class_path(cls: type) -> str:
    return f'{cls.__module__}.{cls.__qualname__}'


@register_backbone_adapter(TIMMBackbone)
class TIMMVisionTransformerAdapter(BackboneAdapter):
    """Prompt a timm ``VisionTransformer`` held by mmpretrain's
    ``TIMMBackbone``.

    Steps, as in timm's ``VisionTransformer.forward_features``:
    ``patch_embed`` -> ``_pos_embed`` (CLS and register tokens, absolute
    position embedding, ``pos_drop``; resampled to the input's grid with
    ``dynamic_img_size=True``) -> ``patch_drop`` -> ``norm_pre`` -> blocks
    -> ``norm`` after the last block; the output is ``forward_head`` of the
    prompt-free sequence, which is what ``TIMMBackbone.forward`` returns.

    Prefix tokens are timm's ``num_prefix_tokens``: CLS (1, or 0 with
    ``class_token=False``) plus ``reg_tokens`` register tokens, plus the
    distillation token for ``VisionTransformerDistilled``. Prompts go right
    after all of them. ``no_embed_class`` only changes how the position
    embedding is added and needs nothing here.

    Supported: exactly ``timm.models.vision_transformer.VisionTransformer``
    (``vit_*``, ``deit_*`` non-distilled, ``deit3_*``, ``*_clip_*``,
    ``*_reg*`` and ``*_dinov2*`` variants, ...) and
    ``timm.models.deit.VisionTransformerDistilled`` (``deit_*_distilled_*``),
    built with ``features_only=False``.

    Quirk: ``TIMMBackbone`` switches timm's pooling off, so a timm ViT's
    output is the whole token sequence ``(B, prefix + N, d)``, which an
    mmpretrain head cannot read. ``out_pool`` pools it here: ``'cls'`` takes
    the first token, ``'avg'`` averages the patch tokens (every prefix token
    skipped). Set it with ``PromptedClassifier(adapter_cfg=dict(
    out_pool='cls'))``. Distilled DeiTs already return ``(B, d)`` (timm
    averages the CLS and distillation tokens) and refuse ``out_pool``.

    Args:
        backbone (TIMMBackbone): The backbone to drive.
        out_pool (str, optional): None (default: outputs as
            ``TIMMBackbone`` gives them), ``'cls'`` or ``'avg'``.

    Raises:
        TypeError: If the timm model is not one of the supported classes;
            the message names the timm model and what is supported.

    Example:
        >>> import torch
        >>> from mmpretrain.models import TIMMBackbone
        >>> backbone = TIMMBackbone('vit_tiny_patch16_224', img_size=32,
        ...                         patch_size=8, reg_tokens=2)
        >>> adapter = TIMMVisionTransformerAdapter(backbone)
        >>> adapter.num_prefix_tokens, adapter.patch_grid
        (3, (4, 4))
        >>> tokens, hw = adapter.embed(torch.rand(1, 3, 32, 32))
        >>> tokens.shape, hw
        (torch.Size([1, 19, 192]), (4, 4))
    """

    def __init__(self,
                 backbone: TIMMBackbone,
                 out_pool: Optional[str] = None) -> None:
        super().__init__(backbone)
        model = getattr(backbone, 'timm_model', None)
        if type(model) not in SUPPORTED_TIMM_VIT_CLASSES:
            supported = ', '.join(
                _class_path(c) for c in SUPPORTED_TIMM_VIT_CLASSES)
            hint = ''
            if hasattr(model, 'feature_info') and isinstance(
                    getattr(model, 'model', None),
                    SUPPORTED_TIMM_VIT_CLASSES):
                hint = (' It was built with features_only=True, which '
                        f'wraps the ViT in {type(model).__name__}; build '
                        'TIMMBackbone with features_only=False.')
            raise ConfigTypeError(
                'Prompt necks cannot attach to TIMMBackbone wrapping timm '
                f'model {_timm_model_name(model)!r} (class '
                f'{_class_path(type(model))}): prompts need a plain timm '
                'ViT whose attention does not depend on the token count. '
                f'Supported timm classes: {supported} (e.g. '
                "'vit_base_patch16_224', 'vit_base_patch14_reg4_dinov2', "
                "'deit_base_distilled_patch16_224')." + hint)
        self.timm_model = model
        if out_pool not in (None, 'cls', 'avg'):
            raise ConfigError(
                "TIMMBackbone adapter: out_pool must be None, 'cls' or "
                f"'avg', got {out_pool!r}.")
        if out_pool is not None and isinstance(model,
                                               VisionTransformerDistilled):
            raise ConfigError(
                f'out_pool={out_pool!r} pools token sequences (B, T, d), but '
                f'timm model {_timm_model_name(model)!r} already returns '
                'pooled features (B, d) (the mean of its CLS and '
                'distillation tokens). Leave out_pool unset for it.')
        self.out_pool = out_pool

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.timm_model.blocks

    @property
    def num_prefix_tokens(self) -> int:
        return self.timm_model.num_prefix_tokens

    @property
    def embed_dims(self) -> int:
        return self.timm_model.embed_dim

    @property
    def patch_size(self) -> Tuple[int, int]:
        """Pixels per patch token (the stride of a hybrid stem included)."""
        patch_embed = self.timm_model.patch_embed
        if hasattr(patch_embed, 'feat_ratio'):
            return tuple(patch_embed.feat_ratio(as_scalar=False))
        return tuple(patch_embed.patch_size)

    @property
    def patch_grid(self) -> Tuple[int, int]:
        return tuple(self.timm_model.patch_embed.grid_size)

    @property
    def out_indices(self) -> Sequence[int]:
        """TIMMBackbone returns one output, after the last block."""
        return (len(self.timm_model.blocks) - 1, )

    def _input_grid(self, inputs: torch.Tensor,
                    patches: torch.Tensor) -> Tuple[int, int]:
        if patches.ndim == 4:  # NHWC, from dynamic_img_size=True
            return tuple(patches.shape[1:3])
        patch_embed = self.timm_model.patch_embed
        if hasattr(patch_embed, 'dynamic_feat_size'):
            return tuple(patch_embed.dynamic_feat_size(inputs.shape[-2:]))
        return tuple(patch_embed.grid_size)

    def embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        model = self.timm_model
        patches = model.patch_embed(inputs)
        hw = self._input_grid(inputs, patches)
        x = model._pos_embed(patches)
        x = model.patch_drop(x)
        expected = model.num_prefix_tokens + hw[0] * hw[1]
        if x.shape[1] != expected:
            raise ConfigError(
                f'TIMMBackbone ({_timm_model_name(model)}): patch dropout '
                f'kept {x.shape[1] - model.num_prefix_tokens} of '
                f'{hw[0] * hw[1]} patch tokens, so the tokens no longer form '
                f'the {hw[0]}x{hw[1]} patch grid prompt necks rely on. Keep '
                'the backbone frozen (it then stays in eval mode, where '
                'timm applies no patch dropout) or build it with '
                'patch_drop_rate=0.')
        x = model.norm_pre(x)
        return x, hw

    def after_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        if index == len(self.timm_model.blocks) - 1:
            x = self.timm_model.norm(x)
        return x

    def format_output(self, x: torch.Tensor, hw: tuple):
        # TIMMBackbone.forward returns timm_model(x), i.e. forward_head of
        # forward_features; after reset_classifier(0, '') that is fc_norm
        # (if any) on the unpooled tokens, or the mean of the CLS and
        # distillation tokens for VisionTransformerDistilled.
        x = self.timm_model.forward_head(x)
        if self.out_pool == 'cls':
            return x[:, 0]
        if self.out_pool == 'avg':
            return x[:, self.num_prefix_tokens:].mean(dim=1)
        return x
