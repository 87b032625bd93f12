"""The contract between a prompt neck and the backbone it prompts.

Neither a prompt neck nor the classifier knows which backbone class it runs
in. The prompted forward (:mod:`vapt_mm.models.utils.prompted_forward`)
asks an adapter how to turn images into the token sequence that enters the
first block, for the blocks themselves, what happens after each block (the
final norm), how the backbone formats an output, and which parts of a block
the fast path may use. Each supported backbone family has one small
adapter class, and each adapter states its family's quirks (weights to
reload after ``init_weights``, blocks that normalise differently, outputs
that must be pooled); the registry below maps backbone classes to them.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn

from ...utils.user_errors import ConfigError, ConfigTypeError
from ..utils.prompt_kv_attention import BlockParts

_ADAPTERS: Dict[Type[nn.Module], Type['BackboneAdapter']] = {}


def register_backbone_adapter(
        *backbone_types: Type[nn.Module]) -> Callable[[type], type]:
    """Class decorator: use the decorated adapter for ``backbone_types``.

    Matching is by exact class, not ``isinstance``: a subclass that changes
    the forward (e.g. BEiT's relative position bias on top of
    ``VisionTransformer``) must not be prompted through its parent's
    adapter by accident.

    Args:
        *backbone_types: The backbone classes the adapter handles.

    Example:
        >>> @register_backbone_adapter(MyViT)
        ... class MyViTAdapter(BackboneAdapter):
        ...     ...
    """

    def _register(adapter_cls: type) -> type:
        for backbone_type in backbone_types:
            _ADAPTERS[backbone_type] = adapter_cls
        return adapter_cls

    return _register


def supported_backbone_names() -> Sequence[str]:
    """Names of the backbone classes that prompt necks can attach to."""
    return sorted(t.__name__ for t in _ADAPTERS)


def build_backbone_adapter(backbone: nn.Module,
                           **options) -> 'BackboneAdapter':
    """Return the adapter that lets a prompt neck drive ``backbone``.

    Args:
        backbone (nn.Module): A built backbone.
        **options: Options of the adapter class (e.g. ``out_pool`` of the
            timm ViT adapter); ``PromptedClassifier(adapter_cfg=...)``
            passes them.

    Returns:
        BackboneAdapter: The adapter bound to ``backbone``.

    Raises:
        TypeError: If no adapter is registered for the backbone's class. The
            message names the backbone and the supported ones.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> vit = VisionTransformer(arch='b')
        >>> build_backbone_adapter(vit).num_prefix_tokens
        1
    """
    adapter_cls = _ADAPTERS.get(type(backbone))
    if adapter_cls is None:
        raise ConfigTypeError(
            f'Prompt necks cannot attach to backbone '
            f'{type(backbone).__name__!r}: prompts need a plain ViT whose '
            'attention does not depend on the token count (relative '
            'position bias, rotary embeddings and windowed attention do). '
            f'Supported backbones: {", ".join(supported_backbone_names())}.')
    return adapter_cls(backbone, **options)


class BackboneAdapter:
    """Where a ViT-like backbone keeps its blocks, prefix tokens and grid.

    Subclasses implement :meth:`embed`, :meth:`after_block` and
    :meth:`format_output` for one backbone family, and override
    :meth:`prompt_kv_parts` and :meth:`after_init_weights` where the family
    has a fast path or a loading quirk. The adapter holds a reference to the
    backbone but owns no parameters, so it never appears in a state dict.

    Args:
        backbone (nn.Module): The backbone to drive.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> adapter = build_backbone_adapter(VisionTransformer(arch='b'))
        >>> adapter.geometry()['patch_grid']
        (14, 14)
    """

    def __init__(self, backbone: nn.Module, **options) -> None:
        if options:
            raise ConfigError(
                f'The {type(backbone).__name__} adapter takes no options, '
                f'got adapter_cfg={options}. (out_pool is for timm ViTs '
                'through TIMMBackbone, whose outputs are token sequences.)')
        self.backbone = backbone

    @property
    def blocks(self) -> Sequence[nn.Module]:
        """The transformer blocks, in order."""
        raise NotImplementedError

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patches: CLS (1), DeiT's CLS + distillation
        (2), none (0)."""
        raise NotImplementedError

    @property
    def embed_dims(self) -> int:
        raise NotImplementedError

    @property
    def patch_size(self) -> Tuple[int, int]:
        raise NotImplementedError

    @property
    def patch_grid(self) -> Tuple[int, int]:
        """The (H, W) patch grid at the backbone's configured image size."""
        raise NotImplementedError

    @property
    def out_indices(self) -> Sequence[int]:
        """Indices of the blocks whose output the backbone returns."""
        raise NotImplementedError

    def embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        """Images -> (tokens entering block 0, (H, W) patch grid)."""
        raise NotImplementedError

    def after_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """What the backbone applies after block ``index`` (final norm)."""
        raise NotImplementedError

    def format_output(self, x: torch.Tensor, hw: tuple):
        """Format a prompt-free token sequence the way the backbone does."""
        raise NotImplementedError

    def prompt_kv_parts(self, block: nn.Module) -> Optional[BlockParts]:
        """The block's parts for the prompt key/value fast path, or None
        when the block must run the plain way (the default)."""
        return None

    def after_init_weights(self) -> None:
        """Repair what the backbone's own ``init_weights`` does wrong for a
        frozen, pretrained backbone. Called by ``PromptedClassifier`` right
        after ``init_weights``; nothing to do by default."""

    def geometry(self) -> dict:
        """Keyword arguments a prompt neck needs to build its parameters."""
        return dict(
            embed_dims=self.embed_dims,
            num_layers=len(self.blocks),
            patch_size=tuple(self.patch_size),
            patch_grid=tuple(self.patch_grid),
            num_prefix_tokens=self.num_prefix_tokens)
