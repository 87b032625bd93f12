"""The base class of prompt necks: geometry, options and the prompt contract."""
import warnings
from typing import Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.utils import to_2tuple


from ...utils.user_errors import ConfigError

class BasePromptNeck(BaseModule):
    """Base class of prompt necks.

    A prompt neck owns the prompt parameters and answers, for each
    transformer block, which prompt tokens the block sees
    (:meth:`replaces_prompts`, :meth:`get_prompts`,
    :meth:`prompts_are_static`). The token layout is always
    ``[prefix (c) | prompts (p) | patches (N)]``; prompts carry no position
    embedding. The prompted forward that runs the backbone with them lives
    in :func:`vapt_mm.models.utils.prompted_forward.run_backbone`; applied
    after the backbone, in mmpretrain's neck position, the neck is the
    identity. ``docs/method.md`` gives the equations.

    **Fast path.** Where a block's outputs at the prompt positions are
    discarded (the next block receives fresh prompts, or it is the last
    block), the block runs with the prompts only as keys and values:
    queries, attention rows, output projection, second norm and FFN are
    computed for the prefix and patch tokens only. The outputs are the same
    as the plain path's. At inference (eval mode, no autograd), the keys and
    values of static prompts are computed once and reused.

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
        out_pool (str, optional): Deprecated: pooling timm token outputs is
            the timm adapter's job; write
            ``PromptedClassifier(adapter_cfg=dict(out_pool=...))``. Still
            accepted here (with a deprecation message) and handed to the
            adapter by the classifier.
        embed_dims (int, optional): Token width d of the backbone.
        num_layers (int, optional): Number of transformer blocks L.
        patch_size (int | tuple, optional): Patch size of the patch
            embedding, used by the VPT initialisation.
        patch_grid (int | tuple, optional): (H, W) patch grid at the
            backbone's image size.
        num_prefix_tokens (int, optional): Tokens before the patches.
        init_cfg (dict, optional): Initialization config. Defaults to None.

    Example:
        >>> from vapt_mm.models import VPTNeck
        >>> neck = VPTNeck(10, deep=True, embed_dims=768, num_layers=12,
        ...                patch_size=16, patch_grid=14)
        >>> neck.replaces_prompts(5), neck.prompts_are_static(5)
        (True, True)
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
            raise ConfigError(
                f'{name}: num_tokens must be a positive integer, got '
                f'{num_tokens!r}.')
        if fast_path not in (None, True, False):
            raise ConfigError(
                f'{name}: fast_path must be None (auto), True or False, got '
                f'{fast_path!r}.')
        if out_pool is not None:
            message = (
                f'{name}(out_pool={out_pool!r}) is deprecated: pooling the '
                'token outputs of timm ViTs is the backbone adapter\'s job. '
                'Write model=dict(type=\'PromptedClassifier\', '
                f'adapter_cfg=dict(out_pool={out_pool!r}), ...) and drop '
                'out_pool from the neck.')
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            print_log(message, logger='current', level=30)
        missing = [
            key for key, value in dict(
                embed_dims=embed_dims,
                num_layers=num_layers,
                patch_size=patch_size,
                patch_grid=patch_grid).items() if value is None
        ]
        if missing:
            raise ConfigError(
                f'{name} needs the backbone geometry {missing}. Build it '
                'inside a PromptedClassifier (which fills these in from the '
                'backbone) or pass them explicitly.')
        self.num_tokens = num_tokens
        self.fast_path = fast_path
        self.with_cp = with_cp
        #: Deprecated spelling of the timm adapter's ``out_pool``; read once
        #: by ``PromptedClassifier``.
        self.out_pool = out_pool
        self.num_prefix_tokens = num_prefix_tokens
        self.embed_dims = int(embed_dims)
        self.num_layers = int(num_layers)
        self.patch_size = to_2tuple(patch_size)
        self.patch_grid = tuple(to_2tuple(patch_grid))

    def get_prompts(self, index: int, tokens: torch.Tensor, hw: tuple,
                    num_prefix_tokens: int) -> Optional[torch.Tensor]:
        """The fresh prompts block ``index`` sees.

        The prompted forward calls it only where :meth:`replaces_prompts`
        is True; elsewhere it returns None.

        Args:
            index (int): Index of the block about to run.
            tokens (Tensor): The running sequence without prompt tokens,
                ``(B, c + N, d)``.
            hw (tuple): The (H, W) patch grid of this input.
            num_prefix_tokens (int): c.

        Returns:
            Tensor | None: ``(B, p, d)`` prompts to place in the prompt
            slots, or None where the block gets no fresh prompts.
        """
        raise NotImplementedError

    def replaces_prompts(self, index: int) -> bool:
        """Whether block ``index`` gets fresh prompts (replacing the ones the
        previous block produced). Where it is False the previous block's
        prompt outputs flow on (at block 0: the block sees no prompts)."""
        raise NotImplementedError

    def prompts_are_static(self, index: int) -> bool:
        """Whether the prompts at ``index`` do not depend on the input."""
        raise NotImplementedError

    def check_input(self, hw: tuple) -> None:
        """Validate the input's patch grid. Override where it matters."""

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
        """After the backbone: the identity."""
        return inputs
