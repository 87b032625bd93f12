"""Class-activation maps (Grad-CAM and relatives) of prompted ViTs.

The CAM methods of the ``grad-cam`` package (``pytorch_grad_cam``) hook one
layer, take its output and the gradient of a class score at that output,
and need both as ``(B, C, H, W)`` maps. For a ViT that layer is usually
the first norm of the last block (as in mmpretrain's
``tools/visualization/vis_cam.py``): the class token is read after the last
block, so the patch tokens' outputs of that block get no gradient.

A prompted ViT needs two things more:

* **Run the plain path.** On the fast path a block's first norm runs
  twice, once on the prompts (for their keys and values) and once on the
  prefix and patch tokens, so a hook on it sees two tensors per forward.
  :class:`PromptedViTCAM` switches the neck to the plain path while it
  computes a map; the outputs are the same (the fast path computes exactly
  the plain path's outputs), and every module then runs once per forward.
* **Drop prompt tokens.** On the plain path the sequence is
  ``[prefix | prompts | patches]``. :class:`TokenGridReshape` drops the
  prefix and, where present, the prompt tokens, and lays the patch tokens
  out on the patch grid in raster order.

A target layer that still runs more or less than once per forward (for
example a VAPT feature projector shared by all blocks, or DeiT3's ``ln1``,
which normalises both the attention and the FFN input) is refused with an
error naming it, instead of giving a map of the wrong call.
"""
import contextlib
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..utils.user_errors import ConfigError, UserError, user_message

__all__ = [
    'CAM_METHODS', 'TokenGridReshape', 'default_cam_target_layer',
    'PromptedViTCAM', 'overlay_cam'
]

#: CAM methods by name -> class name in ``pytorch_grad_cam`` (the
#: gradient- and activation-based ones of mmpretrain's vis_cam).
CAM_METHODS: Dict[str, str] = {
    'gradcam': 'GradCAM',
    'gradcam++': 'GradCAMPlusPlus',
    'xgradcam': 'XGradCAM',
    'hirescam': 'HiResCAM',
    'layercam': 'LayerCAM',
    'eigencam': 'EigenCAM',
    'eigengradcam': 'EigenGradCAM',
}


def _grad_cam():
    try:
        import pytorch_grad_cam
    except ImportError as error:
        raise UserError(
            user_message(
                'the grad-cam package is not installed',
                fix='pip install grad-cam (or pip install -e '
                '".[optional]")')) from error
    return pytorch_grad_cam


class TokenGridReshape:
    """Token activations ``(B, L, d)`` -> patch maps ``(B, d, H, W)``.

    ``L`` must be ``c + H*W`` (no prompts in the sequence) or
    ``c + p + H*W`` (prompts after the prefix); the prefix and prompt
    tokens are dropped and the patch tokens laid out in raster order, as
    the patch embedding flattened them. Any other length is refused
    (:class:`~vapt_mm.utils.user_errors.ConfigError`).

    Args:
        num_prefix_tokens (int): c (CLS, distillation, register tokens).
        num_prompts (int): p; 0 for a model without prompts.
        grid (tuple[int, int]): (H, W) patch grid of the input.

    Example:
        >>> reshape = TokenGridReshape(1, 2, (2, 2))
        >>> x = torch.arange(7.).view(1, 7, 1)  # cls, 2 prompts, 4 patches
        >>> reshape(x).flatten().tolist()
        [3.0, 4.0, 5.0, 6.0]
    """

    def __init__(self, num_prefix_tokens: int, num_prompts: int,
                 grid: Tuple[int, int]) -> None:
        self.num_prefix_tokens = num_prefix_tokens
        self.num_prompts = num_prompts
        self.grid = tuple(grid)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        height, width = self.grid
        prefix, prompts = self.num_prefix_tokens, self.num_prompts
        if tensor.dim() != 3:
            raise ConfigError(
                user_message(
                    'the CAM target layer gives shape '
                    f'{tuple(tensor.shape)}, not token activations (B, L, d)',
                    where='--target-layer',
                    fix='pick a module inside a transformer block'))
        length = tensor.shape[1]
        if length == prefix + height * width:
            patches = tensor[:, prefix:]
        elif prompts and length == prefix + prompts + height * width:
            patches = tensor[:, prefix + prompts:]
        else:
            expected = sorted({prefix + height * width,
                               prefix + prompts + height * width})
            raise ConfigError(
                user_message(
                    f'the CAM target layer gives {length} tokens, expected '
                    f'{" or ".join(map(str, expected))} ({prefix} prefix, '
                    f'{prompts} prompt, {height}x{width} patch tokens)',
                    where='--target-layer',
                    fix='pick a module that sees the whole token sequence'))
        batch, _, dims = patches.shape
        return patches.reshape(batch, height, width,
                               dims).permute(0, 3, 1, 2)


def _backbone_adapter(model: nn.Module):
    adapter = getattr(model, 'backbone_adapter', None)
    if adapter is None:
        raise ConfigError(
            user_message(
                f'{type(model).__name__} is not a PromptedClassifier',
                where='model.type',
                fix="use model.type='PromptedClassifier' (neck=None for a "
                'plain linear probe)'))
    return adapter


def default_cam_target_layer(model: nn.Module) -> str:
    """Name of the default target layer: the last block's first norm.

    The norm before the last block's attention, as mmpretrain's vis_cam
    picks for ViTs. For blocks whose first norm also normalises the FFN
    input (DeiT3) the last block's input is used instead: the output of the
    block before it.

    Args:
        model (nn.Module): A ``PromptedClassifier``.

    Returns:
        str: A module name such as ``'backbone.layers.11.ln1'``.

    Example:
        >>> default_cam_target_layer(model)  # doctest: +SKIP
        'backbone.layers.11.ln1'
    """
    adapter = _backbone_adapter(model)
    blocks = list(adapter.blocks)
    last = blocks[-1]
    parts = adapter.prompt_kv_parts(last)
    norm = None
    if parts is not None and parts.norm_attn is not parts.norm_ffn:
        norm = parts.norm_attn
    elif parts is None and isinstance(getattr(last, 'norm1', None),
                                      nn.Module):
        norm = last.norm1  # timm blocks
    target = norm if norm is not None else (
        blocks[-2] if len(blocks) > 1 else None)
    names = {id(module): name for name, module in model.named_modules()}
    if target is None or id(target) not in names:
        raise ConfigError(
            user_message(
                'no default CAM target layer for this backbone',
                where=type(model.backbone).__name__,
                fix='pass the target layer by name, e.g. '
                "'backbone.layers.0.ln1'"))
    return names[id(target)]


@contextlib.contextmanager
def _plain_path(model: nn.Module) -> Iterator[None]:
    """Run the prompt neck (if any) without its fast path, then restore."""
    neck = getattr(model, 'neck', None)
    if neck is None or not hasattr(neck, 'fast_path'):
        yield
        return
    saved = neck.fast_path
    neck.fast_path = False
    try:
        yield
    finally:
        neck.fast_path = saved


class PromptedViTCAM:
    """Class-activation maps of a ``PromptedClassifier`` (prompts or not).

    Args:
        model (nn.Module): The classifier, weights loaded.
        method (str): One of :data:`CAM_METHODS`. Defaults to 'gradcam'.
        target_layer (str, optional): Name of the module whose output the
            map is computed on (``model.named_modules()`` names). Defaults
            to :func:`default_cam_target_layer`.

    Example:
        >>> cam = PromptedViTCAM(model)  # doctest: +SKIP
        >>> maps = cam(images)  # doctest: +SKIP
        >>> maps.shape  # (B, H, W) of the images, values in [0, 1]
        ... # doctest: +SKIP
        (2, 224, 224)
    """

    def __init__(self,
                 model: nn.Module,
                 method: str = 'gradcam',
                 target_layer: Optional[str] = None) -> None:
        if method not in CAM_METHODS:
            raise ConfigError(
                user_message(
                    f'unknown CAM method {method!r}',
                    where='--method',
                    fix=f'use one of {", ".join(CAM_METHODS)}'))
        self.cam_class = getattr(_grad_cam(), CAM_METHODS[method])
        adapter = _backbone_adapter(model)
        self.model = model
        self.method = method
        self.target_layer_name = (target_layer or
                                  default_cam_target_layer(model))
        modules = dict(model.named_modules())
        if self.target_layer_name not in modules:
            raise ConfigError(
                user_message(
                    f'the model has no module {self.target_layer_name!r}',
                    where='--target-layer',
                    fix='pass a name from model.named_modules(), e.g. '
                    f'{default_cam_target_layer(model)!r}'))
        self.target_layer = modules[self.target_layer_name]
        neck = getattr(model, 'neck', None)
        self.num_prefix_tokens = adapter.num_prefix_tokens
        self.num_prompts = getattr(neck, 'num_tokens', 0) if neck else 0
        #: (H, W) patch grid of the last images (set by each call).
        self.grid: Optional[Tuple[int, int]] = None

    def _patch_grid(self, images: torch.Tensor) -> Tuple[int, int]:
        with torch.no_grad():
            _, grid = self.model.backbone_adapter.embed(images[:1])
        return tuple(grid)

    def _refuse(self, calls: int) -> None:
        raise ConfigError(
            user_message(
                f'the CAM target layer {self.target_layer_name!r} runs '
                f'{"more than once" if calls else "never"} in a forward '
                'pass; a CAM needs a layer that runs exactly once',
                where='--target-layer',
                fix='pick a module of one transformer block that runs '
                f'once, e.g. {default_cam_target_layer(self.model)!r}'))

    def _count_target_calls(self) -> list:
        """Hooks that refuse a target layer not run once per forward.

        Registered before the CAM's own hooks, so a second call is refused
        before its output reaches the reshape.
        """
        calls = [0]

        def reset(*_):
            calls[0] = 0

        def count(*_):
            calls[0] += 1
            if calls[0] > 1:
                self._refuse(calls[0])

        def check(*_):
            if calls[0] != 1:
                self._refuse(calls[0])

        return [
            self.model.register_forward_pre_hook(reset),
            self.target_layer.register_forward_hook(count),
            self.model.register_forward_hook(check),
        ]

    def __call__(self,
                 images: torch.Tensor,
                 target_categories: Optional[Sequence[int]] = None,
                 eigen_smooth: bool = False,
                 aug_smooth: bool = False) -> np.ndarray:
        """Maps of ``images`` for ``target_categories``.

        Args:
            images (Tensor): Normalised images ``(B, 3, H, W)``, as the
                data preprocessor gives them.
            target_categories (Sequence[int], optional): One class per
                image; the predicted class where None.
            eigen_smooth (bool): Smooth with the first principal component.
            aug_smooth (bool): Average over flipped and rescaled inputs.

        Returns:
            np.ndarray: ``(B, H, W)`` float32 maps in [0, 1], at the
            images' resolution.
        """
        from pytorch_grad_cam.utils.model_targets import \
            ClassifierOutputTarget

        if target_categories is not None and len(target_categories) != len(
                images):
            raise ConfigError(
                user_message(
                    f'{len(target_categories)} target categories for '
                    f'{len(images)} images',
                    where='--target-category',
                    fix='give one category per image, or none'))
        self.grid = self._patch_grid(images)
        reshape = TokenGridReshape(self.num_prefix_tokens, self.num_prompts,
                                   self.grid)
        targets = None if target_categories is None else [
            ClassifierOutputTarget(int(c)) for c in target_categories
        ]
        counters = self._count_target_calls()
        cam = None
        try:
            with _plain_path(self.model):
                cam = self.cam_class(
                    model=self.model,
                    target_layers=[self.target_layer],
                    reshape_transform=reshape)
                # Gradients reach the target layer even when nothing before
                # it trains (a linear probe's frozen backbone).
                inputs = images.detach().clone().requires_grad_(True)
                maps = cam(
                    inputs,
                    targets,
                    eigen_smooth=eigen_smooth,
                    aug_smooth=aug_smooth)
        finally:
            for handle in counters:
                handle.remove()
            if cam is not None:
                cam.activations_and_grads.release()
        return maps


def overlay_cam(image_bgr: np.ndarray,
                cam_map: np.ndarray,
                image_weight: float = 0.5) -> np.ndarray:
    """Draw a CAM over an image, as ``pytorch_grad_cam`` does.

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        cam_map (np.ndarray): ``(H, W)`` map in [0, 1].
        image_weight (float): Weight of the image in the blend.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 BGR image with the JET heat map.

    Example:
        >>> overlay_cam(np.zeros((4, 4, 3), np.uint8),
        ...             np.ones((4, 4), np.float32)).shape
        (4, 4, 3)
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image
    return show_cam_on_image(
        image_bgr.astype(np.float32) / 255.0,
        cam_map,
        use_rgb=False,
        image_weight=image_weight)

