"""Prompt files: the small, safe file of what a task adds to a frozen ViT.

A prompt file holds the tensors a prompt-tuned ``PromptedClassifier``
trains (the prompt neck's and the head's, plus any backbone parameter left
trainable by ``frozen_exclude``) in the `safetensors
<https://huggingface.co/docs/safetensors>`_ format: raw tensor bytes after a
JSON header, no pickle, so opening a file from someone else cannot run
code. The safetensors metadata carries one JSON header
(:data:`HEADER_KEY`) with

* ``model``: the model config it was saved from (backbone type and arch,
  neck, head), when known;
* ``structure``: the settings a model must have for the file to compute
  what it was trained to
  (:func:`~vapt_mm.models.classifiers.model_structure.model_structure`);
* ``backbone``: the fingerprint of the frozen backbone weights it was
  trained on (:func:`~vapt_mm.models.classifiers.backbone_fingerprint`),
  the number of frozen tensors and the pretrained file's name;
* ``classes``: the class names, when known.

Loading goes through mmengine's checkpoint loader (see
:mod:`vapt_mm.apis.weights`): a prompt file loads wherever a checkpoint
does (``tools/test.py``, ``load_from``, ``get_model``, the inferencers),
onto a model built from a base config whose backbone loads the pretrained
weights; the model's backbone fingerprint and settings must equal the
recorded ones, or loading stops with an error naming both.

Example:
    >>> save_prompt_file('work_dirs/eurosat/epoch_100.pth',
    ...                  'eurosat.safetensors')  # doctest: +SKIP
    >>> read_prompt_file_header('eurosat.safetensors')['structure']['neck']
    ... # doctest: +SKIP
    'VAPTNeck'
"""
import json
import os.path as osp
import struct
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..models.utils.frozen_state import (frozen_state_dict_keys,
                                         pretrained_checkpoints, unwrap_model)
from ..models.classifiers.backbone_fingerprint import backbone_fingerprint
from ..models.classifiers.exact_loading import (EXTRA_STATE_KEY,
                                                RECORD_VERSION,
                                                backbone_record,
                                                checkpoint_source,
                                                frozen_backbone_keys,
                                                has_exact_loading,
                                                state_dict_tensors)
from ..models.classifiers.model_structure import model_structure
from ..utils.atomic_io import atomic_write
from ..utils.user_errors import (CheckpointError, CheckpointFormatError,
                                 ConfigError, ConfigTypeError,
                                 MissingFileError, user_message)
from ..version import __version__

__all__ = [
    'HEADER_KEY', 'FORMAT_VERSION', 'is_safetensors_file', 'is_prompt_file',
    'read_prompt_file_header', 'read_prompt_file', 'prompt_file_checkpoint',
    'load_prompt_file', 'save_prompt_file', 'prompt_file_header'
]

#: The safetensors metadata key of the JSON header.
HEADER_KEY = 'vapt_mm.prompt_file'
#: Version of the header this vapt_mm writes and reads up to.
FORMAT_VERSION = 1
DOCS = 'docs/deploy.md#prompt-files'

# safetensors: 8-byte little-endian header length, then a JSON header.
_MAX_HEADER_BYTES = 100 * 1024 * 1024

Source = Union[nn.Module, str, Mapping]


def _safetensors_json_header(path: str) -> Optional[dict]:
    """The JSON header of a safetensors file, or None for other files."""
    try:
        size = osp.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (length, ) = struct.unpack('<Q', head)
            if not 2 <= length <= min(size - 8, _MAX_HEADER_BYTES):
                return None
            first = f.read(1)
            if first != b'{':
                return None
            text = first + f.read(length - 1)
    except OSError:
        return None
    try:
        header = json.loads(text.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def is_safetensors_file(path: str) -> bool:
    """Whether ``path`` is a safetensors file (by content, not suffix).

    Args:
        path (str): A file.

    Example:
        >>> is_safetensors_file('epoch_100.pth')  # doctest: +SKIP
        False
    """
    return _safetensors_json_header(path) is not None


def is_prompt_file(path: str) -> bool:
    """Whether ``path`` is a vapt_mm prompt file (a safetensors file with
    the :data:`HEADER_KEY` header).

    Example:
        >>> is_prompt_file('eurosat.safetensors')  # doctest: +SKIP
        True
    """
    header = _safetensors_json_header(path)
    metadata = (header or {}).get('__metadata__')
    return isinstance(metadata, dict) and HEADER_KEY in metadata


def _format_error(path: str, problem: str, fix: str) -> CheckpointFormatError:
    return CheckpointFormatError(
        user_message(
            f'{path} is not a usable prompt file: {problem}',
            where=path,
            fix=fix,
            docs=DOCS))


def _check_header(header: object, path: str) -> dict:
    """Refuse a header this version cannot use."""
    fix = ('write it again with tools/model_converters/extract_prompts.py '
           '(or update vapt_mm if a newer one wrote it).')
    if not isinstance(header, dict):
        raise _format_error(path, 'its header is not a JSON object.', fix)
    version = header.get('format_version')
    if not isinstance(version, int):
        raise _format_error(path, 'its header has no format_version.', fix)
    if version > FORMAT_VERSION:
        raise _format_error(
            path, f'it was written by a newer vapt_mm (format {version}, '
            f'this one reads up to {FORMAT_VERSION}).', 'update vapt_mm.')
    backbone = header.get('backbone')
    if not (isinstance(backbone, dict)
            and isinstance(backbone.get('fingerprint'), str)):
        raise _format_error(
            path, 'its header records no backbone fingerprint.', fix)
    if not isinstance(header.get('structure'), dict):
        raise _format_error(path, 'its header records no model structure.',
                            fix)
    classes = header.get('classes')
    if classes is not None and not (isinstance(classes, list) and all(
            isinstance(c, str) for c in classes)):
        raise _format_error(path, 'its class names are not a list of '
                            'strings.', fix)
    return header


def read_prompt_file_header(path: str) -> dict:
    """Read and check the JSON header of a prompt file (no tensor is read).

    Args:
        path (str): The prompt file.

    Returns:
        dict: ``format_version``, ``vapt_mm_version``, ``model``,
        ``structure``, ``backbone`` (``fingerprint``,
        ``num_frozen_tensors``, ``checkpoint``), ``classes``, ``source``.

    Raises:
        MissingFileError: No such file.
        CheckpointFormatError: Not a prompt file, or a header this version
            cannot read.

    Example:
        >>> read_prompt_file_header('eurosat.safetensors')['classes'][:2]
        ... # doctest: +SKIP
        ['AnnualCrop', 'Forest']
    """
    if not osp.isfile(path):
        raise MissingFileError(
            user_message(f'Prompt file {path} does not exist.',
                         fix='check the path', docs=DOCS))
    raw = _safetensors_json_header(path)
    if raw is None:
        raise _format_error(
            path, 'it is not a safetensors file.',
            'pass a .safetensors file written by save_prompt_file or '
            'tools/model_converters/extract_prompts.py.')
    metadata = raw.get('__metadata__')
    if not isinstance(metadata, dict) or HEADER_KEY not in metadata:
        raise _format_error(
            path, f'a safetensors file without the {HEADER_KEY!r} header '
            '(backbone weights from timm or Hugging Face look like this).',
            'convert backbone weights with tools/model_converters/ and '
            'point model.backbone.init_cfg at them; a prompt file is written '
            'by tools/model_converters/extract_prompts.py.')
    try:
        header = json.loads(metadata[HEADER_KEY])
    except ValueError as error:
        raise _format_error(path, f'its header is not valid JSON ({error}).',
                            'write it again.') from error
    return _check_header(header, path)


def read_prompt_file(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read the tensors (on the CPU) and the header of a prompt file.

    Args:
        path (str): The prompt file.

    Returns:
        tuple: ``(tensors, header)``; tensors keyed as in the classifier's
        state dict (``'neck.…'``, ``'head.…'``).

    Example:
        >>> tensors, header = read_prompt_file('eurosat.safetensors')
        ... # doctest: +SKIP
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    header = read_prompt_file_header(path)
    try:
        tensors = load_file(path, device='cpu')
    except (SafetensorError, OSError, ValueError) as error:
        raise _format_error(path, f'its tensors cannot be read ({error}).',
                            'write it again.') from error
    if not tensors:
        raise _format_error(path, 'it holds no tensor.', 'write it again.')
    return tensors, header


def prompt_file_checkpoint(path: str) -> dict:
    """A prompt file as the checkpoint dict mmengine's loaders expect.

    ``state_dict`` holds the file's tensors and, under ``_extra_state``,
    the backbone record ``PromptedClassifier`` checks when loading (the
    file's backbone fingerprint and model structure), so the trainable-only
    state dict is completed from the model's pretrained backbone and
    checked exactly as a training checkpoint is. ``meta`` holds
    ``dataset_meta`` (``classes``, when known; mmpretrain's ``get_model``
    reads it), ``trainable_only`` and the ``prompt_file`` header.

    Args:
        path (str): The prompt file.

    Returns:
        dict: ``{'state_dict': ..., 'meta': ...}``.

    Example:
        >>> ckpt = prompt_file_checkpoint('eurosat.safetensors')
        ... # doctest: +SKIP
        >>> model.load_state_dict(ckpt['state_dict'])  # doctest: +SKIP
    """
    tensors, header = read_prompt_file(path)
    if EXTRA_STATE_KEY in tensors:
        raise _format_error(path, f'it holds a tensor named '
                            f'{EXTRA_STATE_KEY!r}.', 'write it again.')
    backbone = header['backbone']
    state_dict: Dict[str, object] = dict(tensors)
    state_dict[EXTRA_STATE_KEY] = dict(
        version=RECORD_VERSION,
        backbone_fingerprint=backbone['fingerprint'],
        num_frozen_tensors=backbone.get('num_frozen_tensors'),
        backbone_checkpoint=backbone.get('checkpoint'),
        model_structure=header['structure'],
        prompt_file=path)
    meta = dict(trainable_only=True, prompt_file=header)
    if header.get('classes'):
        meta['dataset_meta'] = dict(classes=list(header['classes']))
    return dict(state_dict=state_dict, meta=meta)


def load_prompt_file(model: nn.Module, path: str) -> dict:
    """Load a prompt file onto a ``PromptedClassifier`` built from a config.

    The frozen backbone is taken from the model (initialised from its
    ``Pretrained`` init_cfg if it has not been yet) and must have the
    fingerprint the file records; the model's settings must equal the
    recorded ones (:func:`~vapt_mm.models.classifiers.model_structure.
    check_model_structure`).
    Class names in the file become ``model._dataset_meta['classes']``,
    where mmpretrain's inferencers look for them.

    Args:
        model (nn.Module): The model (wrapped or not).
        path (str): The prompt file.

    Returns:
        dict: The file's header.

    Raises:
        ConfigTypeError: The model is not a ``PromptedClassifier``.
        CheckpointError: Other backbone weights or another model structure.

    Example:
        >>> model = get_model('configs/vapt/vit-b16_vtab-eurosat.py')
        ... # doctest: +SKIP
        >>> load_prompt_file(model, 'eurosat.safetensors')  # doctest: +SKIP
    """
    model = unwrap_model(model)
    checkpoint = prompt_file_checkpoint(path)
    if not has_exact_loading(model):
        raise ConfigTypeError(
            user_message(
                f'A prompt file loads onto a PromptedClassifier, not a '
                f'{type(model).__name__}.',
                where=path,
                fix='build the model from the config the prompts were '
                'trained with.',
                docs=DOCS))
    with checkpoint_source(path):
        model.load_state_dict(checkpoint['state_dict'])
    header = checkpoint['meta']['prompt_file']
    if header.get('classes'):
        model._dataset_meta = dict(classes=list(header['classes']))
    return header


# --- writing ---------------------------------------------------------------


def _config_model_dict(config: object) -> Optional[dict]:
    """The ``model`` part of a config (path, Config or dict) as plain data."""
    if config is None:
        return None
    from mmengine.config import Config
    if isinstance(config, str):
        config = Config.fromfile(config)
    if not isinstance(config, (Config, Mapping)):
        raise ConfigTypeError(
            f'config must be a path, a Config or a dict, got '
            f'{type(config).__name__}.')
    model_cfg = config.get('model')
    if model_cfg is None:
        return None
    to_dict = getattr(model_cfg, 'to_dict', None)
    model_cfg = to_dict() if to_dict is not None else dict(model_cfg)
    # round trip through JSON: tuples become lists, odd values strings
    return json.loads(json.dumps(model_cfg, default=str))


def _checked_classes(classes: Optional[Sequence[str]],
                     structure: Mapping) -> Optional[List[str]]:
    if classes is None:
        return None
    classes = [str(c) for c in classes]
    num_classes = structure.get('num_classes')
    if num_classes is not None and len(classes) != num_classes:
        raise ConfigError(
            user_message(
                f'{len(classes)} class names were given for a head with '
                f'{num_classes} classes.',
                where=f'classes = {classes[:5]}'
                f'{" ..." if len(classes) > 5 else ""}',
                fix=f'give exactly {num_classes} names, in label order.',
                docs=DOCS))
    return classes


def prompt_file_header(structure: Mapping,
                       fingerprint: str,
                       num_frozen_tensors: int,
                       backbone_checkpoint: Optional[str] = None,
                       model_cfg: Optional[dict] = None,
                       classes: Optional[Sequence[str]] = None,
                       source: Optional[str] = None) -> dict:
    """Compose the JSON header of a prompt file.

    Args:
        structure (Mapping): :func:`model_structure` of the model.
        fingerprint (str): Backbone fingerprint of the frozen weights.
        num_frozen_tensors (int): Number of frozen backbone tensors.
        backbone_checkpoint (str, optional): The pretrained backbone file.
        model_cfg (dict, optional): The model config.
        classes (Sequence[str], optional): Class names in label order.
        source (str, optional): The checkpoint the prompts came from.

    Returns:
        dict: The header.

    Example:
        >>> prompt_file_header({'num_classes': 2}, 'sha256-v1:00', 150,
        ...                    classes=['cat', 'dog'])['classes']
        ['cat', 'dog']
    """
    return dict(
        format_version=FORMAT_VERSION,
        vapt_mm_version=__version__,
        model=model_cfg,
        structure=dict(structure),
        backbone=dict(
            fingerprint=fingerprint,
            num_frozen_tensors=num_frozen_tensors,
            checkpoint=backbone_checkpoint),
        classes=_checked_classes(classes, structure),
        source=source)


def _write(tensors: Dict[str, torch.Tensor], header: dict, out: str) -> None:
    from safetensors.torch import save
    data = save(
        {k: v.detach().to('cpu').contiguous() for k, v in tensors.items()},
        metadata={
            'format': 'pt',
            HEADER_KEY: json.dumps(header, sort_keys=True)
        })
    with atomic_write(out, 'wb') as f:
        f.write(data)


def _require_prompted(model: nn.Module, what: str) -> None:
    if not has_exact_loading(model):
        raise ConfigTypeError(
            user_message(
                f'A prompt file is saved from a PromptedClassifier; {what} '
                f'is a {type(model).__name__}.',
                fix="use model=dict(type='PromptedClassifier', ...) with a "
                'frozen backbone.',
                docs=DOCS))
    if not frozen_backbone_keys(model):
        raise ConfigError(
            user_message(
                f'{what} trains its whole backbone (nothing is frozen), so a '
                'prompt file would have to carry all of it.',
                fix='keep the full checkpoint for fine-tuned models; prompt '
                'files are for frozen backbones (freeze_backbone=True).',
                docs=DOCS))


def _save_from_model(model: nn.Module, out: str,
                     classes: Optional[Sequence[str]],
                     config: object) -> dict:
    model = unwrap_model(model)
    _require_prompted(model, 'the model')
    frozen = frozen_state_dict_keys(model)
    record = backbone_record(model)
    tensors = {
        k: v
        for k, v in state_dict_tensors(model).items() if k not in frozen
    }
    if classes is None:
        classes = (getattr(model, '_dataset_meta', None) or {}).get('classes')
    structure = model_structure(model)
    header = prompt_file_header(
        structure,
        fingerprint=record['backbone_fingerprint'],
        num_frozen_tensors=record['num_frozen_tensors'],
        backbone_checkpoint=record.get('backbone_checkpoint'),
        model_cfg=_config_model_dict(
            config if config is not None else getattr(model, '_config',
                                                      None)),
        classes=classes)
    _write(tensors, header, out)
    return header


def _load_training_checkpoint(path: str) -> dict:
    from mmengine.runner.checkpoint import CheckpointLoader
    if not osp.isfile(path):
        raise MissingFileError(
            user_message(f'Checkpoint {path} does not exist.',
                         fix='pass the .pth file tools/train.py wrote (in its '
                         'work dir).', docs=DOCS))
    if is_prompt_file(path):
        raise ConfigError(
            user_message(f'{path} is already a prompt file.',
                         fix='use it as it is (tools/test.py, tools/infer.py, '
                         'get_model(..., pretrained=...)).', docs=DOCS))
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise CheckpointFormatError(
            user_message(f'{path} holds a {type(checkpoint).__name__}, not a '
                         'checkpoint dict.', where=path, docs=DOCS))
    return checkpoint


def _stored_record(stored: object, name: str) -> dict:
    """The backbone record a checkpoint's ``_extra_state`` holds: a dict, or
    the UTF-8 JSON of one as a uint8 tensor; ``{}`` when there is none."""
    if stored is None:
        return {}
    if isinstance(stored, Mapping):
        return dict(stored)
    if isinstance(stored, torch.Tensor) and stored.dtype == torch.uint8:
        try:
            record = json.loads(bytes(stored.cpu().tolist()).decode('utf-8'))
        except ValueError:
            record = None
        if isinstance(record, dict):
            return record
    raise CheckpointError(
        user_message(
            f'The backbone record ({EXTRA_STATE_KEY}) of checkpoint {name} '
            'is not readable.',
            where=name,
            fix="extract from a checkpoint written by vapt_mm's "
            'tools/train.py.',
            docs=DOCS))


def _checkpoint_config(checkpoint: Mapping, config: object, name: str):
    from mmengine.config import Config
    if config is not None:
        return Config.fromfile(config) if isinstance(config, str) else config
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not isinstance(text, str):
        raise ConfigError(
            user_message(
                f'Checkpoint {name} carries no config (meta["cfg"]), so the '
                'model it belongs to is unknown.',
                where=name,
                fix='pass the training config (--config CONFIG, or '
                'config=... in save_prompt_file).',
                docs=DOCS))
    return Config.fromstring(text, '.py')


def _build_structure_model(cfg) -> nn.Module:
    """The config's model on the meta device: structure and frozen keys
    without memory or weights."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'), torch.device(
            'meta'):
        return MODELS.build(cfg.model)


def _save_from_checkpoint(checkpoint: Union[str, Mapping], out: str,
                          classes: Optional[Sequence[str]],
                          config: object) -> dict:
    name = checkpoint if isinstance(checkpoint, str) else 'the checkpoint'
    if isinstance(checkpoint, str):
        checkpoint = _load_training_checkpoint(checkpoint)
    cfg = _checkpoint_config(checkpoint, config, name)
    model = _build_structure_model(cfg)
    _require_prompted(model, f'the model of {name}')

    raw = checkpoint.get('state_dict', checkpoint)
    state = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in raw.items()
    }
    record = _stored_record(state.pop(EXTRA_STATE_KEY, None), name)
    shapes = {
        k: tuple(v.shape)
        for k, v in state_dict_tensors(model).items()
    }
    frozen_backbone = ['backbone.' + k for k in frozen_backbone_keys(model)]
    frozen = frozen_state_dict_keys(model)
    trainable = [k for k in shapes if k not in frozen]
    problems = [f'missing {k}' for k in trainable if k not in state]
    problems += [f'unexpected {k}' for k in state if k not in shapes]
    problems += [
        f'{k}: file {tuple(state[k].shape)}, config {shapes[k]}'
        for k in shapes if k in state and isinstance(state[k], torch.Tensor)
        and tuple(state[k].shape) != shapes[k]
    ]
    present = [k for k in frozen_backbone if k in state]
    if present and len(present) != len(frozen_backbone):
        problems.append(f'{len(present)} of {len(frozen_backbone)} frozen '
                        'backbone tensors')
    if problems:
        shown = problems[:8] + ([f'and {len(problems) - 8} more']
                                if len(problems) > 8 else [])
        raise CheckpointError(
            user_message(
                f'Checkpoint {name} does not fit the model of its config.',
                where=name + '\n    ' + '\n    '.join(shown),
                fix='pass the config the checkpoint was trained with '
                '(--config).',
                docs=DOCS))
    if present:  # a full checkpoint: the fingerprint of its own backbone
        fingerprint = backbone_fingerprint(
            {k: state[k]
             for k in frozen_backbone}, prefix='backbone.')
    else:
        fingerprint = record.get('backbone_fingerprint') or (
            checkpoint.get('meta') or {}).get('backbone_fingerprint')
    if not fingerprint:
        raise CheckpointError(
            user_message(
                f'Checkpoint {name} holds only the trainable part and '
                'records no backbone fingerprint (written before vapt_mm '
                'recorded one), so a prompt file could not tell which '
                'backbone weights it belongs to.',
                where=name,
                fix='load it into the model (tools/test.py checks it against '
                'the pretrained file of the config) and save the prompt file '
                'from the model: vapt_mm.apis.save_prompt_file(model, out).',
                docs=DOCS))
    if classes is None:
        classes = ((checkpoint.get('meta') or {}).get('dataset_meta')
                   or {}).get('classes')
    header = prompt_file_header(
        model_structure(model),
        fingerprint=fingerprint,
        num_frozen_tensors=len(frozen_backbone),
        backbone_checkpoint=record.get('backbone_checkpoint')
        or pretrained_checkpoints(model).get('backbone'),
        model_cfg=_config_model_dict(cfg),
        classes=classes,
        source=osp.basename(name) if name != 'the checkpoint' else None)
    _write({k: state[k] for k in trainable}, header, out)
    return header


def save_prompt_file(source: Source,
                     out: str,
                     classes: Optional[Sequence[str]] = None,
                     config: object = None) -> dict:
    """Write the prompt file of a model or of a training checkpoint.

    The file holds every tensor of the classifier's state dict that is not
    part of the frozen backbone (for the configs here: ``neck.*`` and
    ``head.*``), as safetensors, and the JSON header described in this
    module. It is written atomically.

    Args:
        source (nn.Module | str | dict): A ``PromptedClassifier`` (its
            backbone must hold the weights it was trained on), or a
            checkpoint written by ``tools/train.py`` (full or trainable-only;
            path or loaded dict).
        out (str): The file to write (``.safetensors`` by convention).
        classes (Sequence[str], optional): Class names in label order.
            Defaults to the checkpoint's ``meta['dataset_meta']['classes']``
            or the model's ``_dataset_meta`` (set by ``get_model``).
        config (str | Config, optional): The training config. Defaults to
            the checkpoint's ``meta['cfg']`` or the model's ``_config``; for
            a checkpoint one of them is needed.

    Returns:
        dict: The header written.

    Raises:
        ConfigTypeError: Not a ``PromptedClassifier``.
        ConfigError: Nothing is frozen, no config, or as many class names as
            the head has classes were not given.
        CheckpointError: The checkpoint does not fit the config's model, or
            a trainable-only checkpoint records no backbone fingerprint.

    Example:
        >>> header = save_prompt_file('work_dirs/x/epoch_100.pth',
        ...                           'x.safetensors')  # doctest: +SKIP
        >>> header['structure']['num_tokens']  # doctest: +SKIP
        10
    """
    if isinstance(source, nn.Module):
        return _save_from_model(source, out, classes, config)
    if isinstance(source, (str, Mapping)):
        return _save_from_checkpoint(source, out, classes, config)
    raise ConfigTypeError(
        f'save_prompt_file: source must be a model, a checkpoint path or a '
        f'checkpoint dict, got {type(source).__name__}.')
