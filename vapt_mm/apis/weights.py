"""Load any weights file of a prompt-tuned model, in every loading path.

Three kinds of file hold a trained ``PromptedClassifier``: a full Runner
checkpoint, a trainable-only one (``TrainableCheckpointHook``) and a prompt
file (:mod:`vapt_mm.apis.prompt_file`). :func:`register_prompt_file_loader`
teaches mmengine's ``CheckpointLoader`` (its ``''`` scheme, which
``load_from``, ``tools/test.py``, ``init_cfg=dict(type='Pretrained')``,
mmpretrain's ``get_model``/``init_model`` and its inferencers all go
through) to read prompt files, recognised by their content, as a
trainable-only state dict with their backbone record; every other local
file goes to the loader registered before (which names damaged files,
:mod:`vapt_mm.engine.checkpoint_integrity`). The model's exact loading then
completes the frozen backbone and checks its fingerprint and structure the
same way for all three kinds. Importing :mod:`vapt_mm` registers it.

:func:`load_weights` is the one call for a model in hand;
:func:`init_prompted_model` builds a model from a config and loads a file.
"""
import os.path as osp
from typing import Optional

import torch.nn as nn
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

from ..engine.checkpoint_integrity import load_from_local_checked
from ..models.utils.frozen_state import unwrap_model
from ..models.classifiers.exact_loading import (checkpoint_source,
                                                has_exact_loading)
from ..utils.user_errors import MissingFileError, errors_doc, user_message
from .prompt_file import is_safetensors_file, prompt_file_checkpoint

__all__ = [
    'load_from_local_or_prompt_file', 'register_prompt_file_loader',
    'load_weights', 'init_prompted_model', 'checkpoint_classes'
]


def load_from_local_or_prompt_file(filename: str,
                                   map_location: Optional[object] = None
                                   ) -> dict:
    """mmengine's local checkpoint loader, which also reads prompt files.

    A safetensors file (recognised by its content, whatever its suffix)
    must be a prompt file and is returned by
    :func:`~vapt_mm.apis.prompt_file.prompt_file_checkpoint` (tensors on
    the CPU; loading copies them to the model's device). Any other file is
    loaded by
    :func:`~vapt_mm.engine.checkpoint_integrity.load_from_local_checked`.

    Args:
        filename (str): A local path.
        map_location (str | callable, optional): As for ``torch.load``.

    Returns:
        dict: The checkpoint.

    Raises:
        CheckpointFormatError: A safetensors file that is not a prompt file.

    Example:
        >>> ckpt = load_from_local_or_prompt_file('eurosat.safetensors')
        ... # doctest: +SKIP
        >>> sorted(ckpt)  # doctest: +SKIP
        ['meta', 'state_dict']
    """
    path = osp.expanduser(filename)
    if osp.isfile(path) and is_safetensors_file(path):
        return prompt_file_checkpoint(path)
    return load_from_local_checked(filename, map_location)


def register_prompt_file_loader() -> None:
    """Make :func:`load_from_local_or_prompt_file` mmengine's local loader.

    Idempotent. URLs and other schemes keep their loaders.

    Example:
        >>> register_prompt_file_loader()
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_or_prompt_file, force=True)


def checkpoint_classes(checkpoint: dict) -> Optional[list]:
    """Class names a loaded checkpoint or prompt file records, if any.

    Args:
        checkpoint (dict): A loaded checkpoint.

    Returns:
        list | None: ``meta['dataset_meta']['classes']`` as a list.

    Example:
        >>> checkpoint_classes(dict(meta=dict(dataset_meta=dict(
        ...     classes=('cat', 'dog')))))
        ['cat', 'dog']
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    classes = ((meta or {}).get('dataset_meta') or {}).get('classes')
    return list(classes) if classes else None


def _require_file(path: str) -> None:
    if '://' not in path and not osp.isfile(osp.expanduser(path)):
        raise MissingFileError(
            user_message(
                f'Weights file {path} does not exist.',
                fix='pass a checkpoint written by tools/train.py or a prompt '
                'file written by tools/model_converters/extract_prompts.py.',
                docs=errors_doc('checkpoint-missing')))


def load_weights(model: nn.Module,
                 path: str,
                 map_location: Optional[object] = 'cpu') -> dict:
    """Load a full checkpoint, a trainable-only checkpoint or a prompt file.

    One call for every kind of file (the export and CAM tools use it). A
    ``PromptedClassifier`` loads exactly or refuses (see
    :mod:`~vapt_mm.models.classifiers.exact_loading`): a file without the
    frozen backbone is completed from the model's pretrained backbone, whose
    fingerprint must equal the recorded one. Other models load with
    ``strict=True``. Class names the file records become
    ``model._dataset_meta['classes']`` (where mmpretrain's inferencers read
    them).

    Args:
        model (nn.Module): The model built from the training (or base)
            config; wrapped or not.
        path (str): The file (a local path or a URL).
        map_location (str | callable, optional): As for ``torch.load``.
            Defaults to 'cpu'.

    Returns:
        dict: The loaded checkpoint (``meta`` included).

    Raises:
        MissingFileError: No such local file.
        CheckpointError: The file does not fit the model.

    Example:
        >>> model = MODELS.build(cfg.model)  # doctest: +SKIP
        >>> load_weights(model, 'eurosat.safetensors')  # doctest: +SKIP
    """
    _require_file(path)
    model = unwrap_model(model)
    with checkpoint_source(path):
        checkpoint = load_checkpoint(
            model,
            path,
            map_location=map_location,
            strict=not has_exact_loading(model))
    classes = checkpoint_classes(checkpoint)
    if classes:
        model._dataset_meta = dict(classes=classes)
    return checkpoint


def init_prompted_model(config: object,
                        weights: str,
                        device: Optional[str] = None,
                        **kwargs) -> nn.Module:
    """Build a model with mmpretrain's ``get_model`` and load ``weights``.

    Loading errors name ``weights``. The model is in eval mode, carries
    ``_config`` and ``_dataset_meta`` (class names from the file if it
    records them) as ``get_model`` sets them.

    Args:
        config (str | Config): A config file, a Config, or a model name of
            the model index (``mmpretrain.list_models('*vapt*')``).
        weights (str): A full or trainable-only checkpoint or a prompt
            file. (``get_model`` without weights would leave even the
            backbone random: it never runs ``init_weights``.)
        device (str, optional): Where to put the model.
        **kwargs: Overrides of the model config, as for ``get_model``.

    Returns:
        nn.Module: The model.

    Example:
        >>> model = init_prompted_model(
        ...     'configs/vapt/vit-b16_vtab-eurosat.py',
        ...     'eurosat.safetensors')  # doctest: +SKIP
    """
    from mmpretrain.apis import get_model
    _require_file(weights)
    with checkpoint_source(weights):
        return get_model(
            config, pretrained=weights, device=device, **kwargs)


register_prompt_file_loader()
