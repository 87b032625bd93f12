"""What a prompt-tuned classifier is made of, as plain data.

A prompt file (:mod:`vapt_mm.apis.prompt_file`) holds only the neck's and
the head's tensors; it is loaded onto a model built from a base config.
Equal tensor shapes do not make two models equal: VPT-deep and VPT-shallow
with one block, a head on the CLS token or on averaged patches, another
number of prefix tokens all take the same tensors and compute something
else. :func:`model_structure` lists the settings that change what a loaded
file computes; :func:`check_model_structure` refuses a model whose settings
differ from the ones a file recorded, naming each setting and both values.
"""
from typing import Dict, List, Mapping, Optional

import torch.nn as nn

from ...utils.user_errors import CheckpointError, user_message

__all__ = ['model_structure', 'check_model_structure', 'STRUCTURE_DOCS']

STRUCTURE_DOCS = 'docs/deploy.md#prompt-files'

#: Neck attributes that change the computation (read when present).
_NECK_FIELDS = ('num_tokens', 'deep', 'vpt_depth', 'share_projector')
#: Backbone and adapter attributes that change the computation.
_BACKBONE_FIELDS = ('out_type', 'final_norm', 'with_cls_token')


def _plain(value: object) -> object:
    """JSON-friendly form: tuples become lists."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def model_structure(model: nn.Module) -> Dict[str, object]:
    """The settings of a ``PromptedClassifier`` that a prompt file fits.

    Args:
        model (nn.Module): A ``PromptedClassifier`` (or any classifier with
            ``backbone``, ``backbone_adapter``, ``neck`` and ``head``).

    Returns:
        dict: JSON-serialisable settings: classifier, backbone and head
        class names, the backbone geometry (``embed_dims``, ``num_layers``,
        ``patch_size``, ``patch_grid``, ``num_prefix_tokens``), its output
        settings, the neck class and its prompt settings (``num_tokens``,
        ``deep``, ``vpt_depth``, ``share_projector``), ``num_classes`` and
        ``frozen_exclude``.

    Example:
        >>> from mmpretrain.registry import MODELS
        >>> import vapt_mm  # noqa: F401
        >>> model = MODELS.build(dict(
        ...     type='PromptedClassifier',
        ...     backbone=dict(type='VisionTransformer', arch='deit-tiny',
        ...                   img_size=32, patch_size=8),
        ...     neck=dict(type='VPTNeck', num_tokens=4, deep=True),
        ...     head=dict(type='LinearClsHead', num_classes=3,
        ...               in_channels=192)))
        >>> s = model_structure(model)
        >>> s['neck'], s['num_tokens'], s['deep'], s['num_classes']
        ('VPTNeck', 4, True, 3)
    """
    structure: Dict[str, object] = dict(
        classifier=type(model).__name__,
        backbone=type(model.backbone).__name__)
    adapter = getattr(model, 'backbone_adapter', None)
    if adapter is not None:
        structure.update(
            {key: _plain(value)
             for key, value in adapter.geometry().items()})
        structure['out_pool'] = getattr(adapter, 'out_pool', None)
    for field in _BACKBONE_FIELDS:
        if hasattr(model.backbone, field):
            structure[f'backbone_{field}'] = _plain(
                getattr(model.backbone, field))
    neck = getattr(model, 'neck', None)
    structure['neck'] = type(neck).__name__ if neck is not None else None
    for field in _NECK_FIELDS:
        if neck is not None and hasattr(neck, field):
            structure[field] = _plain(getattr(neck, field))
    head = getattr(model, 'head', None)
    structure['head'] = type(head).__name__ if head is not None else None
    structure['num_classes'] = getattr(head, 'num_classes', None)
    structure['frozen_exclude'] = list(getattr(model, 'frozen_exclude', []))
    return structure


def check_model_structure(model: nn.Module,
                          recorded: Mapping[str, object],
                          where: Optional[str] = None) -> None:
    """Refuse ``model`` if its settings differ from ``recorded``.

    Every setting present on either side is compared; one that only one
    side has counts as a difference.

    Args:
        model (nn.Module): The model being loaded into.
        recorded (Mapping): :func:`model_structure` of the model the file
            was saved from.
        where (str, optional): The file, for the message.

    Raises:
        CheckpointError: Naming every differing setting with the file's and
            the model's value.

    Example:
        >>> check_model_structure(model, model_structure(model))
        ... # doctest: +SKIP
    """
    current = model_structure(model)
    differences: List[str] = []
    for key in sorted(set(recorded) | set(current)):
        theirs, ours = recorded.get(key), current.get(key)
        if _plain(theirs) != ours:
            differences.append(f'{key}: file {theirs!r}, model {ours!r}')
    if not differences:
        return
    raise CheckpointError(
        user_message(
            f'The prompt file was saved from another model than the one '
            f'the config builds ({len(differences)} setting(s) differ).',
            where=(where or 'the prompt file being loaded') + '\n    ' +
            '\n    '.join(differences),
            fix='build the model from the config the prompts were trained '
            'with (its neck, head and backbone settings); the header of the '
            'file lists them (vapt_mm.apis.read_prompt_file_header).',
            docs=STRUCTURE_DOCS))
