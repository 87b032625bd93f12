"""The building blocks of VAPT's adaptive prompts."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


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

    Steps (VAPT_SPEC.md): LayerNorm over d; the N patch tokens laid out as
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
            raise ValueError(
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
