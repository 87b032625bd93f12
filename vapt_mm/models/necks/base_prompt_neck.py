"""The base class of prompt necks: geometry, options and the prompt contract."""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmengine.utils import to_2tuple

from ..backbones import BackboneAdapter
from ..backbones.prompt_kv_block import BlockParts, prompt_key_values


def vpt_uniform_bound(patch_size: Tuple[int, int], embed_dims: int) -> float:
    """Half-width v of VPT's uniform prompt init, ``sqrt(6 / (3*ph*pw + d))``.

    Args:
        patch_size (tuple): (ph, pw) of the patch embedding.
        embed_dims (int): Token width d.

    Example:
        >>> vpt_uniform_bound((16, 16), 768)
        0.0625
    """
    ph, pw = patch_size
    return math.sqrt(6.0 / (3 * ph * pw + embed_dims))


class BasePromptNeck(BaseModule):
    """Base class of prompt necks.

    A prompt neck owns the prompt parameters and decides, before each
    transformer block, which prompt tokens the block sees. The token layout
    is always ``[prefix (c) | prompts (p) | patches (N)]``; prompts carry no
    position embedding. :meth:`forward_backbone` runs the backbone's own
    modules (through a :class:`BackboneAdapter`) with the prompts inserted,
    and removes them before every output is formatted, so each output keeps
    the shape and meaning it has for the bare backbone. Applied after the
    backbone, in mmpretrain's neck position, the neck is the identity.

    **Fast path.** Where a block's outputs at the prompt positions are
    discarded (the next block receives fresh prompts, or it is the last
    block), the block runs with the prompts only as keys and values:
    queries, attention rows, output projection, second norm and FFN are
    computed for the prefix and patch tokens only. The outputs are the same
    as the plain path's. At inference (eval mode, no autograd), the keys and
    values of static prompts are computed once and reused until the prompts
    or the block's weights change.

    The backbone geometry arguments are filled in by
    :class:`PromptedClassifier` from the backbone it builds; give them only
    when building a neck on its own.

    Args:
        num_tokens (int): Number of prompt tokens p.
        fast_path (bool, optional): None (default) uses the fast path for
            the blocks that support it (mmpretrain's ViT, DeiT and DeiT3
            blocks) and the plain path elsewhere; False always runs the plain
            path; True requires the fast path and raises for a block that
            cannot take it.
        with_cp (bool): Recompute the blocks' activations in the backward
            pass (activation checkpointing) to save memory. Prompt gradients
            are unchanged. Defaults to False.
        out_pool (str, optional): For backbones whose outputs are token
            sequences ``(B, T, d)`` (timm ViTs through ``TIMMBackbone``),
            pool them after the backbone so an mmpretrain head can read
            them: ``'cls'`` takes the first token, ``'avg'`` averages the
            patch tokens. None (default) passes outputs on unchanged.
        embed_dims (int, optional): Token width d of the backbone.
        num_layers (int, optional): Number of transformer blocks L.
        patch_size (int | tuple, optional): Patch size of the patch
            embedding, used by the VPT initialisation.
        patch_grid (int | tuple, optional): (H, W) patch grid at the
            backbone's image size.
        num_prefix_tokens (int, optional): Tokens before the patches; needed
            by ``out_pool='avg'``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 num_tokens: int,
                 fast_path: Optional[bool] = None,
                 with_cp: bool = False,
                 out_pool: Optional[str] = None,
                 embed_dims: Optional[int] = None,
                 num_layers: Optional[int] = None,
                 patch_size: Optional[Union[int, Sequence[int]]] = None,
                 patch_grid: Optional[Union[int, Sequence[int]]] = None,
                 num_prefix_tokens: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if not isinstance(num_tokens, int) or num_tokens < 1:
            raise ValueError(
                f'{name}: num_tokens must be a positive integer, got '
                f'{num_tokens!r}.')
        if fast_path not in (None, True, False):
            raise ValueError(
                f'{name}: fast_path must be None (auto), True or False, got '
                f'{fast_path!r}.')
        if out_pool not in (None, 'cls', 'avg'):
            raise ValueError(
                f"{name}: out_pool must be None, 'cls' or 'avg', got "
                f'{out_pool!r}.')
        if out_pool == 'avg' and num_prefix_tokens is None:
            raise ValueError(
                f"{name}(out_pool='avg') needs num_prefix_tokens (filled in "
                'by PromptedClassifier).')
        missing = [
            key for key, value in dict(
                embed_dims=embed_dims,
                num_layers=num_layers,
                patch_size=patch_size,
                patch_grid=patch_grid).items() if value is None
        ]
        if missing:
            raise ValueError(
                f'{name} needs the backbone geometry {missing}. Build it '
                'inside a PromptedClassifier (which fills these in from the '
                'backbone) or pass them explicitly.')
        self.num_tokens = num_tokens
        self.fast_path = fast_path
        self.with_cp = with_cp
        self.out_pool = out_pool
        self.num_prefix_tokens = num_prefix_tokens
        self.embed_dims = int(embed_dims)
        self.num_layers = int(num_layers)
        self.patch_size = to_2tuple(patch_size)
        self.patch_grid = tuple(to_2tuple(patch_grid))
        self._kv_cache: Dict[int, tuple] = {}

    def get_prompts(self, index: int, tokens: torch.Tensor, hw: tuple,
                    num_prefix_tokens: int) -> Optional[torch.Tensor]:
        """The fresh prompts block ``index`` sees, or None.

        Args:
            index (int): Index of the block about to run.
            tokens (Tensor): The running sequence without prompt tokens,
                ``(B, c + N, d)``.
            hw (tuple): The (H, W) patch grid of this input.
            num_prefix_tokens (int): c.

        Returns:
            Tensor | None: ``(B, p, d)`` prompts to place in the prompt slots,
            or None to let the prompts from the previous block flow on (at
            block 0, None means the block sees no prompts).
        """
        raise NotImplementedError

    def replaces_prompts(self, index: int) -> bool:
        """Whether :meth:`get_prompts` returns fresh prompts at ``index``.

        It must agree with :meth:`get_prompts`; the fast path uses it to know
        whether block ``index - 1``'s prompt outputs are discarded.
        """
        raise NotImplementedError

    def prompts_are_static(self, index: int) -> bool:
        """Whether the prompts at ``index`` do not depend on the input."""
        raise NotImplementedError

    def check_input(self, hw: tuple) -> None:
        """Validate the input's patch grid. Override where it matters."""

    def fast_block_parts(self, adapter: BackboneAdapter,
                         block) -> Optional[BlockParts]:
        """The block's parts when the fast path is to be used for it."""
        if self.fast_path is False:
            return None
        parts = adapter.prompt_kv_parts(block)
        if parts is None and self.fast_path:
            raise TypeError(
                f'{type(self).__name__}(fast_path=True): blocks of type '
                f'{type(block).__name__} cannot take prompts as keys and '
                'values only. Use fast_path=None (automatic) or False.')
        return parts

    def prompt_kv(self, index: int, parts: BlockParts,
                  prompts: torch.Tensor,
                  fresh: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the prompts at block ``index``.

        Static prompts at inference (eval mode, autograd off) are the same
        for every input: their keys and values are computed once per block
        and reused while the prompts and the block's weights are unchanged
        (tracked through the tensors' in-place version counters).
        """
        # No cache while tracing or exporting: the trace would depend on
        # the cache's state and freeze its tensors as constants.
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
        cacheable = (fresh and not self.training
                     and not torch.is_grad_enabled() and not tracing
                     and self.prompts_are_static(index))
        if not cacheable:
            return prompt_key_values(parts, prompts)
        watched = [prompts] + [
            p for m in (parts.norm_attn, parts.attn.qkv)
            for p in m.parameters()
        ]
        stamp = tuple((t.data_ptr(), t._version, t.dtype, t.device)
                      for t in watched)
        cached = self._kv_cache.get(index)
        if cached is None or cached[0] != stamp:
            k, v = prompt_key_values(parts, prompts[:1])
            cached = (stamp, k, v)
            self._kv_cache[index] = cached
        _, k, v = cached
        batch = prompts.shape[0]
        return k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)

    def train(self, mode: bool = True) -> 'BasePromptNeck':
        self._kv_cache.clear()
        return super().train(mode)

    def forward_backbone(self, adapter: BackboneAdapter,
                         inputs: torch.Tensor) -> tuple:
        """Run the backbone on ``inputs`` with this neck's prompts.

        Args:
            adapter (BackboneAdapter): Adapter bound to the backbone.
            inputs (Tensor): Images ``(B, 3, H, W)``.

        Returns:
            tuple: What the backbone's ``forward`` returns, one entry per
            ``out_indices`` element, computed with prompts.
        """
        from .prompted_forward import run_backbone
        return run_backbone(adapter, inputs, self)

    def reset_parameters(self) -> None:
        """Re-initialise the prompt parameters as the method prescribes."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """Initialise, then restore the method's own initialisation.

        A classifier-level ``init_cfg`` (e.g. TruncNormal on every
        ``Linear``, as DeiT configs have) is applied to all submodules before
        this runs; re-running :meth:`reset_parameters` keeps VPT's uniform
        prompts and VAPT's zero-initialised projectors.
        """
        super().init_weights()
        self.reset_parameters()

    def forward(self, inputs: tuple) -> tuple:
        """After the backbone: the identity, or the ``out_pool`` pooling."""
        if self.out_pool is None:
            return inputs
        return tuple(self._pool(x) for x in inputs)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(
                f'{type(self).__name__}(out_pool={self.out_pool!r}) pools '
                f'token sequences (B, T, d); the backbone gave shape '
                f'{tuple(x.shape)}. Use out_pool=None for this backbone.')
        if self.out_pool == 'cls':
            return x[:, 0]
        return x[:, self.num_prefix_tokens:].mean(dim=1)
