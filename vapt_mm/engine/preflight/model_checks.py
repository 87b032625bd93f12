"""Check a model config against the data and its pretrained file, cheaply.

Without these checks a wrong ``model.head.num_classes`` or
``model.head.in_channels`` only fails at the first iteration with a raw
torch error (``Target 3 is out of bounds``, ``mat1 and mat2 shapes cannot
be multiplied``), and a missing pretrained file after the Runner has
printed its environment. The backbone is built on the ``meta`` device (no
memory, no initialisation: milliseconds even for ViT-L), which gives its
width and the shapes of its weights.

Example:
    >>> from mmengine.config import Config
    >>> cfg = Config.fromfile('configs/vapt/vit-b16_vtab-eurosat.py')
    >>> backbone = build_backbone_on_meta(cfg.model.backbone)
    >>> backbone_width(backbone)
    768
    >>> check_head_in_channels(cfg.model, backbone)
"""
import copy
import logging
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmpretrain.models.backbones import TIMMBackbone
from mmpretrain.registry import MODELS

from ...models.backbones import build_backbone_adapter
from ...models.necks import BasePromptNeck
from ...models.utils.pretrained_check import check_pretrained_checkpoint
from ...utils.user_errors import (CheckpointFormatError, ConfigError,
                                  MissingFileError, UserError, errors_doc,
                                  user_message)
from .split_labels import SplitLabels

__all__ = [
    'build_backbone_on_meta', 'backbone_width', 'check_head_fits_labels',
    'check_head_in_channels', 'check_pretrained_backbone'
]

#: mmpretrain necks that keep the feature width (besides the prompt necks).
WIDTH_KEEPING_NECKS = ('GlobalAveragePooling', )


@contextmanager
def _quiet_logger() -> Iterator[None]:
    """Silence INFO logs while building (TIMMBackbone logs every block)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _registered(type_name) -> Optional[type]:
    if isinstance(type_name, type):
        return type_name
    return MODELS.get(type_name) if isinstance(type_name, str) else None


def build_backbone_on_meta(backbone_cfg: dict) -> nn.Module:
    """Build a backbone config without allocating or initialising weights.

    The module is built on the ``meta`` device (shapes only); a backbone
    whose constructor cannot run there is built on the CPU instead. A
    ``TIMMBackbone`` is built without its ``pretrained`` /
    ``checkpoint_path`` download or load: only the shapes matter here.

    Args:
        backbone_cfg (dict): ``model.backbone`` of a config.

    Returns:
        nn.Module: The backbone (weights not initialised, not loaded).

    Example:
        >>> vit = build_backbone_on_meta(dict(type='VisionTransformer',
        ...                                   arch='b', img_size=224))
        >>> vit.pos_embed.shape, vit.pos_embed.device
        (torch.Size([1, 197, 768]), device(type='meta'))
    """
    cfg = copy.deepcopy(backbone_cfg)
    cls = _registered(cfg.get('type'))
    if isinstance(cls, type) and issubclass(cls, TIMMBackbone):
        cfg['pretrained'] = False
        cfg['checkpoint_path'] = ''
    with _quiet_logger():
        try:
            with torch.device('meta'):
                return MODELS.build(cfg)
        except UserError:
            raise
        except Exception:  # a constructor that needs real tensors
            return MODELS.build(cfg)


def backbone_width(backbone: nn.Module) -> Optional[int]:
    """The width of the features a backbone gives (its ``embed_dims``).

    Args:
        backbone (nn.Module): A built backbone.

    Returns:
        int | None: The token width of a ViT that prompt necks support
        (VisionTransformer and its DeiT / DeiT3 / MAE / MoCo v3 / CLIP /
        DINOv2 forms, timm ViTs in TIMMBackbone); else the backbone's
        ``embed_dims`` attribute if it has one; else None.

    Example:
        >>> backbone_width(build_backbone_on_meta(dict(
        ...     type='VisionTransformer', arch='deit-small')))
        384
    """
    try:
        return int(build_backbone_adapter(backbone).embed_dims)
    except TypeError:  # not a backbone prompts attach to
        width = getattr(backbone, 'embed_dims', None)
        return width if isinstance(width, int) else None


def _neck_keeps_width(neck_cfg) -> bool:
    if neck_cfg is None:
        return True
    if not isinstance(neck_cfg, dict):
        return False
    cls = _registered(neck_cfg.get('type'))
    if cls is None:
        return False
    return issubclass(cls, BasePromptNeck) or \
        cls.__name__ in WIDTH_KEEPING_NECKS


def check_head_in_channels(model_cfg: dict,
                           backbone: nn.Module) -> Optional[str]:
    """Refuse a ``model.head.in_channels`` other than the backbone width.

    Args:
        model_cfg (dict): ``cfg.model``.
        backbone (nn.Module): The backbone built from ``model_cfg.backbone``.

    Returns:
        str | None: Why the check was skipped (no ``in_channels``, a neck
        that may change the width, unknown backbone width), or None when it
        passed.

    Raises:
        ConfigError: ``model.head.in_channels`` differs from the width.

    Example:
        >>> check_head_in_channels(cfg.model, backbone)  # doctest: +SKIP
    """
    head = model_cfg.get('head', None) or {}
    in_channels = head.get('in_channels', None)
    if in_channels is None:
        return 'model.head has no in_channels'
    if not _neck_keeps_width(model_cfg.get('neck', None)):
        return (f'model.neck ({model_cfg["neck"].get("type")}) may change the '
                'feature width')
    width = backbone_width(backbone)
    if width is None:
        return f'the width of {type(backbone).__name__} is not known'
    if in_channels != width:
        raise ConfigError(
            user_message(
                f'model.head.in_channels is {in_channels}, but the backbone '
                f'gives {width}-wide features.',
                where=f'model.head.in_channels={in_channels}; model.backbone '
                f'({type(backbone).__name__}) width {width}',
                fix=f'set model.head.in_channels={width} (e.g. --cfg-options '
                f'model.head.in_channels={width}), or use the backbone the '
                'head was meant for',
                docs=errors_doc('in-channels')))
    return None


def check_head_fits_labels(head_cfg: dict,
                           labels: Sequence[SplitLabels]) -> Optional[str]:
    """Refuse labels the head cannot predict and a wrong class count.

    Two checks, in this order: every label of every annotation file is below
    ``model.head.num_classes``; and for data sets whose class count is fixed
    (a VTAB-1k task, an FGVC data set) ``model.head.num_classes`` equals it
    (a larger head would train on logits no image has, a smaller one could
    never predict some classes).

    Args:
        head_cfg (dict): ``cfg.model.head``.
        labels (Sequence[SplitLabels]): What the dataloaders hold.

    Returns:
        str | None: Why the check was skipped (no ``num_classes``), or None.

    Raises:
        ConfigError: A label is >= ``num_classes``, or ``num_classes`` is not
            the data set's class count.

    Example:
        >>> check_head_fits_labels(dict(num_classes=10), labels)
        ...                                           # doctest: +SKIP
    """
    num_classes = (head_cfg or {}).get('num_classes', None)
    if num_classes is None:
        return 'model.head has no num_classes'
    for entry in labels:
        if entry.max_label is not None and entry.max_label >= num_classes:
            raise ConfigError(
                user_message(
                    f'The annotation file holds label {entry.max_label}, but '
                    f'model.head.num_classes is {num_classes}: the head '
                    f'predicts labels 0..{num_classes - 1} only.',
                    where=f'{entry.source}, {entry.max_label_at} '
                    f'({entry.loader}: {entry.description}); '
                    f'model.head.num_classes={num_classes}',
                    fix='set model.head.num_classes to the class count of '
                    f'the data (at least {entry.max_label + 1}), e.g. '
                    '--cfg-options model.head.num_classes='
                    f'{entry.num_classes or entry.max_label + 1}, or fix the '
                    'labels',
                    docs=errors_doc('label-range')))
    for entry in labels:
        if entry.num_classes is not None and entry.num_classes != num_classes:
            raise ConfigError(
                user_message(
                    f'{entry.description} has {entry.num_classes} classes, '
                    f'but model.head.num_classes is {num_classes}.',
                    where=f'model.head.num_classes={num_classes}; '
                    f'{entry.loader}: {entry.description}',
                    fix=f'set model.head.num_classes={entry.num_classes} '
                    '(each task config sets it; --cfg-options '
                    f'model.head.num_classes={entry.num_classes})',
                    docs=errors_doc('class-count')))
    return None


def _pretrained_init(backbone_cfg: dict) -> Optional[dict]:
    """The ``Pretrained`` entry of the backbone's ``init_cfg``, if any."""
    init_cfg = backbone_cfg.get('init_cfg', None)
    entries: List = (list(init_cfg) if isinstance(init_cfg, (list, tuple))
                     else [init_cfg])
    for entry in entries:
        if isinstance(entry, dict) and entry.get('type') == 'Pretrained':
            return entry
    return None


def check_pretrained_backbone(backbone: nn.Module,
                              backbone_cfg: dict) -> Optional[str]:
    """Check the backbone's ``Pretrained`` file: present and fitting.

    Uses :func:`vapt_mm.models.utils.pretrained_check.check_pretrained_checkpoint`,
    the check ``PromptedClassifier.init_weights`` runs, and turns its errors
    into user errors that name the config key.

    Args:
        backbone (nn.Module): The backbone built from ``backbone_cfg`` (the
            ``meta`` device is fine: only shapes are compared).
        backbone_cfg (dict): ``cfg.model.backbone``.

    Returns:
        str | None: The checked file, or None without a ``Pretrained``
        init_cfg.

    Raises:
        MissingFileError: The file does not exist.
        CheckpointFormatError: The file cannot be read or does not fit.

    Example:
        >>> check_pretrained_backbone(backbone, cfg.model.backbone)
        'checkpoints/vit-b16_in21k.pth'
    """
    init = _pretrained_init(backbone_cfg)
    if init is None:
        return None
    checkpoint = init.get('checkpoint')
    key = 'model.backbone.init_cfg.checkpoint'
    try:
        check_pretrained_checkpoint(backbone, checkpoint, init.get('prefix'))
    except FileNotFoundError as err:
        raise MissingFileError(
            user_message(
                f'{err}',
                where=f'{key}={checkpoint!r}',
                fix='download / convert the weights as '
                'docs/pretrained_weights.md describes, or point the config '
                f'at your copy: --cfg-options {key}=/path/to/weights.pth',
                docs=errors_doc('pretrained-missing'))) from err
    except (ValueError, UserError) as err:
        raise CheckpointFormatError(
            user_message(
                f'{err}',
                where=f'{key}={checkpoint!r}',
                fix='use the converted file for this backbone (arch, '
                'patch size, img_size) and the right init_cfg prefix',
                docs=errors_doc('pretrained-mismatch'))) from err
    return checkpoint
