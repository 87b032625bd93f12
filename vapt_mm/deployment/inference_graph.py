"""The inference graph that is exported: images in, class logits out."""
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.utils import to_2tuple

from ..utils.user_errors import ConfigError, user_message

__all__ = ['ImageClassifierLogits', 'model_input_size', 'random_images']

#: Names of the graph's input and output in exported files.
INPUT_NAME = 'images'
OUTPUT_NAME = 'logits'


class ImageClassifierLogits(nn.Module):
    """An mmpretrain classifier as ``images -> logits``, for export.

    ``forward(images)`` is the classifier's ``'tensor'`` mode with its head:
    the class scores before softmax, shape ``(B, num_classes)``. The input
    is what the model's data preprocessor produces: RGB (when the config
    sets ``to_rgb``), normalised with the config's ``mean`` and ``std``,
    at the backbone's image size. Normalisation and softmax stay outside
    the graph, as in mmpretrain's own deployment.

    The wrapper keeps the classifier in eval mode (also when asked for
    ``train()``) and leaves everything else as the config built it (the
    prompt necks' fast path is on by default).

    Args:
        classifier (nn.Module): An mmpretrain ``ImageClassifier`` (for
            example a ``PromptedClassifier``) with a head.

    Raises:
        ConfigError: If the classifier has no head (its ``'tensor'`` mode
            would return features, not class scores).

    Example:
        >>> graph = ImageClassifierLogits(model)  # doctest: +SKIP
        >>> graph(torch.rand(2, 3, 224, 224)).shape  # doctest: +SKIP
        torch.Size([2, 10])
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        if not getattr(classifier, 'with_head', False):
            raise ConfigError(
                user_message(
                    f'{type(classifier).__name__} has no head, so it gives '
                    'features, not class scores',
                    where='model.head',
                    fix='export a classifier config with a head'))
        self.classifier = classifier
        self.eval()

    def train(self, mode: bool = True) -> 'ImageClassifierLogits':
        """Stay in eval mode whatever is asked.

        Exporters switch the module to eval and afterwards back to the mode
        it had; an inference graph must never leave eval mode (prompt
        dropout would make the reference outputs random).
        """
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images, mode='tensor')


def model_input_size(classifier: nn.Module) -> Tuple[int, int]:
    """The (H, W) image size the classifier's backbone is configured for.

    The backbone's ``img_size`` where it has one (mmpretrain ViTs), else
    the patch grid times the patch size (timm ViTs through their adapter).

    Args:
        classifier (nn.Module): The classifier.

    Returns:
        tuple[int, int]: (H, W).

    Example:
        >>> model_input_size(model)  # doctest: +SKIP
        (224, 224)
    """
    backbone = classifier.backbone
    img_size = getattr(backbone, 'img_size', None)
    if img_size is not None:
        return tuple(int(v) for v in to_2tuple(img_size))
    adapter = getattr(classifier, 'backbone_adapter', None)
    if adapter is None:
        raise ConfigError(
            user_message(
                f'cannot tell the input size of backbone '
                f'{type(backbone).__name__}',
                where='model.backbone',
                fix='use a ViT backbone with an img_size'))
    (grid_h, grid_w), (patch_h, patch_w) = (adapter.patch_grid,
                                            adapter.patch_size)
    return grid_h * patch_h, grid_w * patch_w


def random_images(batch_size: int,
                  size: Tuple[int, int],
                  seed: int = 0) -> torch.Tensor:
    """Standard-normal images ``(B, 3, H, W)``, like normalised inputs.

    Args:
        batch_size (int): B.
        size (tuple[int, int]): (H, W).
        seed (int): Seed of the generator (the same seed gives the same
            images). Defaults to 0.

    Example:
        >>> random_images(2, (32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, 3, *size, generator=generator)
