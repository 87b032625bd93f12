"""Visual Adaptive Prompt Tuning (Le et al., ICLR 2026), deep, as released."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ...utils.user_errors import ConfigError
from .base_prompt_neck import BasePromptNeck
from .static_prompts import StaticPrompts


class FeatureProjector(nn.Module):
    """VAPT's feature projector ``g(x) = x + W2 · drop(ReLU(W1 · x))``.

    ``W1: d -> r`` and ``W2: r -> d`` have no bias. The residual is part of
    the released method (the paper's equation omits it).

    Args:
        embed_dims (int): Token width d.
        hidden_dim (int): Bottleneck width r.
        dropout (float): Dropout on the hidden activation.

    Example:
        >>> g = FeatureProjector(768, 8, 0.1)
        >>> g(torch.zeros(2, 10, 768)).abs().max().item()
        0.0
    """

    def __init__(self, embed_dims: int, hidden_dim: int,
                 dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dim, bias=False)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, embed_dims, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.drop(self.act(self.fc1(x))))


class AdaptivePromptGenerator(nn.Module):
    """Turns one block's input tokens into ``p`` raw adaptive prompts.

    Steps (``docs/method.md``, "VAPT"): LayerNorm over d; the N patch tokens laid out as
    a ``(d, H, W)`` map in raster order; a channel-wise convolution whose
    single ``K x K`` kernel (standard-normal init, no bias) is shared by all
    d channels; ``Dropout2d``; a token-wise projector
    ``Linear(H'*W' -> p)`` with bias, zero-initialised. The output, of
    shape ``(B, p, d)``, still has to pass the feature projector.

    Args:
        embed_dims (int): Token width d.
        patch_grid (tuple): (H, W) patch grid the generator is built for.
        num_tokens (int): Prompt tokens p.
        kernel_size (int): K.
        padding (int): Convolution padding.
        conv_dropout (float): ``Dropout2d`` rate after the convolution.

    Example:
        >>> gen = AdaptivePromptGenerator(768, (14, 14), 10, 2, 0, 0.1)
        >>> gen.token_projector.in_features
        169
    """

    def __init__(self, embed_dims: int, patch_grid: Tuple[int, int],
                 num_tokens: int, kernel_size: int, padding: int,
                 conv_dropout: float) -> None:
        super().__init__()
        height, width = patch_grid
        out_h = height + 2 * padding - kernel_size + 1
        out_w = width + 2 * padding - kernel_size + 1
        if out_h < 1 or out_w < 1:
            raise ConfigError(
                f'VAPTNeck: kernel_size={kernel_size} with padding='
                f'{padding} does not fit the {height}x{width} patch grid '
                f'(the convolution output would be {out_h}x{out_w}).')
        self.patch_grid = (height, width)
        self.padding = padding
        self.norm = nn.LayerNorm(embed_dims, eps=1e-5)
        self.kernel = nn.Parameter(torch.empty(1, 1, kernel_size,
                                               kernel_size))
        self.conv_drop = nn.Dropout2d(conv_dropout)
        self.token_projector = nn.Linear(out_h * out_w, num_tokens)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.kernel)
        nn.init.zeros_(self.token_projector.weight)
        nn.init.zeros_(self.token_projector.bias)
        self.norm.reset_parameters()

    def forward(self, tokens: torch.Tensor,
                num_prefix_tokens: int) -> torch.Tensor:
        """``(B, c + N, d)`` prompt-free tokens -> ``(B, p, d)``."""
        patches = self.norm(tokens)[:, num_prefix_tokens:]
        # The width comes from the module, not from ``patches.shape``: a
        # shape read from the input is symbolic under ONNX export with a
        # dynamic batch, and the convolution kernel needs a static shape.
        dims = self.norm.normalized_shape[0]
        feature_map = patches.transpose(1, 2).reshape(-1, dims,
                                                      *self.patch_grid)
        weight = self.kernel.expand(dims, 1, -1, -1).to(feature_map.dtype)
        feature_map = F.conv2d(
            feature_map, weight, padding=self.padding, groups=dims)
        feature_map = self.conv_drop(feature_map)
        prompts = self.token_projector(feature_map.flatten(2))  # (B, d, p)
        return prompts.transpose(1, 2)


@MODELS.register_module()
class VAPTNeck(BasePromptNeck):
    """Visual Adaptive Prompt Tuning.

    Blocks ``0 .. vpt_depth-1`` take static prompts exactly like VPT-deep.
    Every later block ``l`` takes adaptive prompts computed from its input
    (the output of block ``l-1`` without its prompt tokens): LayerNorm_l,
    the patch tokens as a ``(d, H, W)`` map, a channel-wise ``K x K``
    convolution (one kernel shared by all channels), ``Dropout2d``, a
    token-wise projector ``Linear_l(H'*W' -> p)`` (zero-initialised, so every
    adaptive prompt is exactly zero at initialisation) and a feature
    projector ``g(x) = x + W2 · drop(ReLU(W1 · x))`` shared by all adaptive
    blocks (``share_projector=True``) or one per block. No prompt dropout
    acts on adaptive prompts. ``docs/method.md`` ("VAPT") writes the method
    as equations and lists what the released code adds to the paper.

    The token-wise projector ties the neck to the patch grid it was built
    for (from the backbone's ``img_size``); another grid raises a
    ``ValueError`` naming both grids.

    Shallow VAPT (adaptive prompts only at the input, flowing through the
    blocks) is not defined by the authors and has no published numbers:
    ``deep=False`` is refused. ``vpt_depth=0`` makes every block adaptive
    (block 0's prompts come from the embedded patches), as the paper's
    equations write it; ``vpt_depth=num_layers`` is VPT-deep.

    Args:
        num_tokens (int): Prompt tokens p per block.
        kernel_size (int): Convolution kernel size K. Defaults to 2.
        padding (int): Convolution padding. Defaults to 0.
        hidden_dim (int): Feature projector bottleneck r. Defaults to 8.
        mlp_dropout (float): Dropout on the feature projector's hidden
            layer. Defaults to 0.1.
        conv_dropout (float): ``Dropout2d`` rate after the convolution.
            Defaults to 0.1.
        vpt_depth (int): Number of leading blocks with static prompts.
            Defaults to 1.
        dropout (float): Prompt dropout on the static prompts.
            Defaults to 0.
        share_projector (bool): One feature projector for all adaptive
            blocks. Defaults to True.
        deep (bool): Must be True; see above. Defaults to True.
        **kwargs: ``fast_path``, ``with_cp`` and the backbone geometry
            (``embed_dims``, ``num_layers``,
            ``patch_size``, ``patch_grid``) and ``init_cfg``; see
            :class:`BasePromptNeck`.

    Example:
        >>> neck = VAPTNeck(10, embed_dims=768, num_layers=12,
        ...                 patch_size=16, patch_grid=14)
        >>> sum(p.numel() for p in neck.parameters())
        55608
    """

    def __init__(self,
                 num_tokens: int,
                 kernel_size: int = 2,
                 padding: int = 0,
                 hidden_dim: int = 8,
                 mlp_dropout: float = 0.1,
                 conv_dropout: float = 0.1,
                 vpt_depth: int = 1,
                 dropout: float = 0.0,
                 share_projector: bool = True,
                 deep: bool = True,
                 **kwargs) -> None:
        super().__init__(num_tokens, **kwargs)
        if not deep:
            raise ConfigError(
                'VAPTNeck(deep=False): VAPT is defined with deep prompts '
                'only (its authors release no shallow variant and no '
                'numbers for one). Use VPTNeck(deep=False) for shallow '
                'prompts, or VAPTNeck(vpt_depth=0) for adaptive prompts at '
                'every block including the first.')
        if not 0 <= vpt_depth <= self.num_layers:
            raise ConfigError(
                f'VAPTNeck: vpt_depth must be in [0, {self.num_layers}] '
                f'(the backbone has {self.num_layers} blocks), got '
                f'{vpt_depth!r}.')
        for key, rate in dict(
                mlp_dropout=mlp_dropout, conv_dropout=conv_dropout).items():
            if not 0.0 <= rate < 1.0:
                raise ConfigError(
                    f'VAPTNeck: {key} must be in [0, 1), got {rate!r}.')
        self.vpt_depth = vpt_depth
        self.share_projector = share_projector
        num_adaptive = self.num_layers - vpt_depth

        self.static_prompts = StaticPrompts(
            vpt_depth, num_tokens, self.embed_dims, self.patch_size,
            dropout) if vpt_depth > 0 else None
        self.generators = nn.ModuleList(
            AdaptivePromptGenerator(self.embed_dims, self.patch_grid,
                                    num_tokens, kernel_size, padding,
                                    conv_dropout)
            for _ in range(num_adaptive))
        num_projectors = min(num_adaptive, 1 if share_projector else
                             num_adaptive)
        self.projectors = nn.ModuleList(
            FeatureProjector(self.embed_dims, hidden_dim, mlp_dropout)
            for _ in range(num_projectors))

    def check_input(self, hw: tuple) -> None:
        if self.generators and tuple(hw) != self.patch_grid:
            built = 'x'.join(map(str, self.patch_grid))
            given = 'x'.join(map(str, hw))
            raise ConfigError(
                f'VAPTNeck was built for a {built} patch grid (the '
                f"backbone's img_size), but this input gives a {given} "
                'grid. Its token-wise projectors are sized to the grid: '
                'resize inputs to the configured img_size, or build the '
                'model with the img_size you feed.')

    def get_prompts(self, index: int, tokens: torch.Tensor, hw: tuple,
                    num_prefix_tokens: int) -> torch.Tensor:
        if index < self.vpt_depth:
            return self.static_prompts(index, tokens.shape[0])
        adaptive_index = index - self.vpt_depth
        raw = self.generators[adaptive_index](tokens, num_prefix_tokens)
        projector = self.projectors[0 if self.share_projector else
                                    adaptive_index]
        return projector(raw)

    def reset_parameters(self) -> None:
        if self.static_prompts is not None:
            self.static_prompts.reset_parameters()
        for generator in self.generators:
            generator.reset_parameters()
        for projector in self.projectors:
            projector.fc1.reset_parameters()
            projector.fc2.reset_parameters()

    def replaces_prompts(self, index: int) -> bool:
        return True

    def prompts_are_static(self, index: int) -> bool:
        return index < self.vpt_depth
