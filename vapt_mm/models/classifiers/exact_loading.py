"""Loading a prompt-tuned classifier is exact or refused, in every path.

mmengine's ``load_checkpoint`` (``tools/test.py``, ``load_from``,
``--resume``, mmpretrain's ``get_model``/``init_model`` and
``ImageClassificationInferencer``) loads with ``strict=False`` and only
logs missing keys, so a checkpoint without the frozen backbone, or one from
another model, would give a model with a random backbone or a random head
and a meaningless accuracy. :func:`install_exact_loading` puts two
state-dict hooks on the model, which every loader passes through
(``module.load_state_dict`` and mmengine's ``load_state_dict`` alike):

* before anything is copied, a tensor whose shape differs from the model's
  is refused, and a *trainable-only* state dict (all frozen backbone
  tensors absent, as ``TrainableCheckpointHook`` writes it) is completed
  from the model's own backbone: initialised from its ``Pretrained``
  init_cfg if it has not been yet, then compared with the backbone
  fingerprint the checkpoint recorded (see :func:`backbone_record`);
* after loading, any missing or unexpected key is refused.

Errors are :class:`~vapt_mm.utils.user_errors.CheckpointError`. The model
does not know which file a state dict came from; a tool names it by loading
inside :func:`checkpoint_source`.
"""
import contextlib
import contextvars
import json
import logging
from typing import Dict, Iterator, List, Mapping, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from ...utils.user_errors import CheckpointError, user_message
from ..utils.frozen_state import frozen_state_dict_keys, pretrained_checkpoints
from .backbone_fingerprint import backbone_fingerprint
from .model_structure import check_model_structure

__all__ = [
    'EXTRA_STATE_KEY', 'RECORD_VERSION', 'backbone_record', 'encode_record',
    'read_backbone_record', 'checkpoint_source', 'frozen_backbone_keys',
    'has_exact_loading', 'install_exact_loading', 'state_dict_tensors'
]

#: The state-dict key under which torch stores ``get_extra_state()``.
EXTRA_STATE_KEY = '_extra_state'
#: Version of the record :func:`backbone_record` writes.
RECORD_VERSION = 1
DOCS = 'docs/training.md (Loading is exact or refused)'

_BACKBONE = 'backbone.'
_NUM_SHOWN = 8
_MARKER = '_vapt_exact_loading'
_PREFIX_ATTR = '_vapt_loading_prefix'
_INITIALISING_ATTR = '_vapt_initialising_for_load'
_source: contextvars.ContextVar = contextvars.ContextVar(
    'vapt_mm_checkpoint_source', default=None)


@contextlib.contextmanager
def checkpoint_source(path: Optional[str]) -> Iterator[None]:
    """Name the file that loads inside this block in loading errors.

    Args:
        path (str, optional): The checkpoint file (or URL) being loaded.

    Example:
        >>> with checkpoint_source('work_dirs/x/epoch_100.pth'):
        ...     runner.test()  # doctest: +SKIP
    """
    token = _source.set(path)
    try:
        yield
    finally:
        _source.reset(token)


def _where(detail: str = '') -> str:
    """The file being loaded (if a tool named it) and ``detail``; a detail
    that starts with a newline goes on lines of its own."""
    source = _source.get()
    name = (f'checkpoint {source}'
            if source else 'the state dict being loaded (file not known '
            'here; mmengine logs the path it loads)')
    if not detail:
        return name
    return name + (detail if detail.startswith('\n') else ': ' + detail)


def _preview(keys: List[str]) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:_NUM_SHOWN])
    more = len(keys) - _NUM_SHOWN
    return shown + (f' and {more} more' if more > 0 else '')


def _describe(model: nn.Module) -> str:
    parts = [
        f'{name} {type(getattr(model, name)).__name__}'
        for name in ('backbone', 'neck', 'head')
        if getattr(model, name, None) is not None
    ]
    return f'{type(model).__name__}({", ".join(parts)})'


def frozen_backbone_keys(model: nn.Module) -> List[str]:
    """State-dict keys of the frozen part of ``model.backbone``.

    These are the keys a trainable-only checkpoint lacks, without the
    ``backbone.`` prefix.

    Args:
        model (nn.Module): A classifier with a ``backbone``.

    Returns:
        list[str]: Sorted keys, e.g. ``['cls_token', 'layers.0.ln1.bias']``.

    Example:
        >>> frozen_backbone_keys(model)[:1]  # doctest: +SKIP
        ['cls_token']
    """
    return sorted(key[len(_BACKBONE):]
                  for key in frozen_state_dict_keys(model)
                  if key.startswith(_BACKBONE))


def backbone_record(model: nn.Module) -> dict:
    """What a checkpoint of ``model`` records about its frozen backbone.

    Stored in the model's state dict as ``_extra_state``
    (``get_extra_state``, encoded by :func:`encode_record`), so it travels
    with every checkpoint, full or trainable-only.

    Args:
        model (nn.Module): A classifier with a ``backbone``.

    Returns:
        dict: ``version``, ``backbone_fingerprint`` (of the frozen backbone
        tensors, :func:`backbone_fingerprint`; None when nothing is
        frozen), ``num_frozen_tensors`` and ``backbone_checkpoint`` (the
        file of the backbone's ``Pretrained`` init_cfg, or None).

    Example:
        >>> backbone_record(model)['backbone_fingerprint']  # doctest: +SKIP
        'sha256-v1:1f0c...'
    """
    keys = frozen_backbone_keys(model)
    return dict(
        version=RECORD_VERSION,
        backbone_fingerprint=(backbone_fingerprint(model.backbone, keys)
                              if keys else None),
        num_frozen_tensors=len(keys),
        backbone_checkpoint=pretrained_checkpoints(model).get('backbone'))


def encode_record(record: Mapping) -> torch.Tensor:
    """Store a backbone record as a state-dict value.

    A uint8 tensor of its JSON: mmengine treats every state-dict value as a
    tensor (it broadcasts them in distributed training, EMA copies them), so
    the record must be one.

    Args:
        record (Mapping): JSON-serialisable, e.g. :func:`backbone_record`.

    Returns:
        Tensor: 1-D ``torch.uint8``, the UTF-8 bytes of the JSON.

    Example:
        >>> read_backbone_record(encode_record(dict(version=1)))
        {'version': 1}
    """
    data = json.dumps(dict(record), sort_keys=True).encode('utf-8')
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def read_backbone_record(stored: object) -> Optional[dict]:
    """Read the backbone record of a state dict (``_extra_state``).

    Args:
        stored (object): The ``_extra_state`` value: a tensor written by
            :func:`encode_record`, a dict, or None for checkpoints written
            before the record existed.

    Returns:
        dict | None: The record (see :func:`backbone_record`).

    Raises:
        CheckpointError: If it is not such a record, or from a newer
            version.

    Example:
        >>> read_backbone_record(None) is None
        True
    """
    if stored is None:
        return None
    record = None
    if isinstance(stored, Mapping):
        record = dict(stored)
    elif (isinstance(stored, torch.Tensor) and stored.dtype == torch.uint8
          and stored.dim() == 1):
        try:
            record = json.loads(bytes(stored.cpu().tolist()).decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            record = None
    version = record.get('version') if isinstance(record, dict) else None
    fingerprint = (record.get('backbone_fingerprint')
                   if isinstance(record, dict) else None)
    if (not isinstance(version, int)
            or not isinstance(fingerprint, (str, type(None)))):
        raise CheckpointError(
            user_message(
                'The backbone record of the checkpoint is not readable.',
                where=_where(f'{EXTRA_STATE_KEY} = {stored!r}'[:300]),
                fix='load a checkpoint written by vapt_mm\'s tools/train.py.',
                docs=DOCS))
    if version > RECORD_VERSION:
        raise CheckpointError(
            user_message(
                f'The checkpoint was written by a newer vapt_mm (backbone '
                f'record version {version}, this one reads up to '
                f'{RECORD_VERSION}).',
                where=_where(EXTRA_STATE_KEY),
                fix='update vapt_mm.'))
    return record


def install_exact_loading(model: nn.Module) -> None:
    """Make every state-dict load into ``model`` exact or an error.

    ``model`` needs a ``backbone`` and a bool attribute
    ``allow_other_backbone_weights``, and should return
    ``encode_record(backbone_record(model))`` from ``get_extra_state`` (see
    ``PromptedClassifier``).

    Args:
        model (nn.Module): The classifier.

    Example:
        >>> install_exact_loading(classifier)  # doctest: +SKIP
    """
    model.register_load_state_dict_pre_hook(_before_load)
    model.register_load_state_dict_post_hook(_after_load)
    setattr(model, _MARKER, True)


def has_exact_loading(model: nn.Module) -> bool:
    """Whether ``model`` completes and checks state dicts itself.

    Example:
        >>> import torch.nn as nn
        >>> has_exact_loading(nn.Linear(2, 2))
        False
    """
    return bool(getattr(model, _MARKER, False))


def _before_load(module: nn.Module, state_dict: Dict[str, object],
                 prefix: str, *args) -> None:
    record_key = prefix + EXTRA_STATE_KEY
    record = read_backbone_record(state_dict.get(record_key))
    # Checkpoints written before the record existed load as they did.
    state_dict.setdefault(record_key, None)
    setattr(module, _PREFIX_ATTR, prefix)
    # A prompt file records the model it was saved from (model_structure).
    if isinstance(record, Mapping) and record.get('model_structure'):
        check_model_structure(module, record['model_structure'], _where())
    _refuse_shape_mismatches(module, state_dict, prefix)
    _complete_frozen_backbone(module, state_dict, prefix, record)


def state_dict_tensors(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Parameters and persistent buffers of ``model`` by state-dict key.

    Unlike ``state_dict()`` it does not call ``get_extra_state`` (which
    hashes the backbone and cannot run on the meta device).

    Args:
        model (nn.Module): Any module.

    Returns:
        dict: Key -> tensor (not copied).

    Example:
        >>> sorted(state_dict_tensors(nn.Linear(2, 2)))
        ['bias', 'weight']
    """
    tensors = {}
    for name, sub in model.named_modules(remove_duplicate=False):
        head = f'{name}.' if name else ''
        for key, value in sub._parameters.items():
            if value is not None:
                tensors[head + key] = value
        for key, value in sub._buffers.items():
            if (value is not None
                    and key not in sub._non_persistent_buffers_set):
                tensors[head + key] = value
    return tensors


def _refuse_shape_mismatches(module: nn.Module, state_dict: Mapping,
                             prefix: str) -> None:
    mismatched = []
    for key, target in state_dict_tensors(module).items():
        value = state_dict.get(prefix + key)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            mismatched.append(f'{key}: the file holds a '
                              f'{type(value).__name__}, the model a tensor '
                              f'of shape {tuple(target.shape)}')
        elif value.shape != target.shape and not (
                key.startswith(_BACKBONE) and key.endswith('pos_embed')
                and value.dim() == target.dim()
                and value.shape[-1] == target.shape[-1]):
            # (a backbone's pos_embed of another token count is resized by
            # mmpretrain's ViTs when it loads)
            mismatched.append(f'{key}: file {tuple(value.shape)}, model '
                              f'{tuple(target.shape)}')
    if mismatched:
        raise CheckpointError(
            user_message(
                f'The checkpoint does not fit {_describe(module)}: '
                f'{len(mismatched)} tensor(s) have another shape.',
                where=_where('\n    ' + '\n    '.join(mismatched)),
                fix='load it with the config it was trained with (the '
                'number of classes, prompt tokens, neck and backbone must '
                'be the same).',
                docs=DOCS))


def _initialise_backbone(module: nn.Module) -> None:
    """Run ``init_weights`` if the backbone has not been initialised and
    has a pretrained file: ``Runner.test()``, ``get_model`` and the
    inferencer never call it."""
    if (getattr(module.backbone, 'is_init', True)
            or getattr(module, _INITIALISING_ATTR, False)
            or not pretrained_checkpoints(module).get('backbone')):
        return
    print_log(
        'Trainable-only checkpoint: loading the frozen backbone from '
        f'{pretrained_checkpoints(module)["backbone"]} (init_weights).',
        logger='current')
    setattr(module, _INITIALISING_ATTR, True)
    try:
        module.init_weights()
    finally:
        setattr(module, _INITIALISING_ATTR, False)


def _complete_frozen_backbone(module: nn.Module, state_dict: Dict[str,
                                                                  object],
                              prefix: str, record: Optional[dict]) -> None:
    frozen = frozen_backbone_keys(module)
    full_prefix = prefix + _BACKBONE
    missing = [key for key in frozen if full_prefix + key not in state_dict]
    if not missing:
        return  # a full checkpoint brings its own backbone
    missing_keys = [_BACKBONE + key for key in missing]
    if len(missing) < len(frozen):
        raise CheckpointError(
            user_message(
                f'The checkpoint holds {len(frozen) - len(missing)} of the '
                f'{len(frozen)} frozen backbone tensors of '
                f'{_describe(module)}: neither a full nor a trainable-only '
                'checkpoint.',
                where=_where(f'missing {_preview(missing_keys)}'),
                fix='freeze the same parameters as the training config '
                '(freeze_backbone, frozen_exclude), or load a complete '
                'file.',
                docs=DOCS))

    _initialise_backbone(module)
    allow = bool(getattr(module, 'allow_other_backbone_weights', False))
    init_file = pretrained_checkpoints(module).get('backbone')
    current = backbone_fingerprint(module.backbone, missing)
    recorded = (record or {}).get('backbone_fingerprint')
    if recorded is None and init_file is None and not allow:
        raise CheckpointError(
            user_message(
                'The checkpoint holds only the trainable part and records '
                'no backbone fingerprint (written before vapt_mm recorded '
                "one), and the model's backbone has no init_cfg="
                "dict(type='Pretrained', checkpoint=...): its frozen weights "
                'would be random.',
                where=_where(f'{len(missing)} frozen backbone tensors '
                             f'missing, e.g. {_preview(missing_keys)}'),
                fix='set model.backbone.init_cfg to the pretrained file the '
                'run trained from, or set model.allow_other_backbone_weights'
                '=True if the backbone loads its weights itself.',
                docs=DOCS))
    if recorded is not None and recorded != current:
        trained_on = (record or {}).get('backbone_checkpoint')
        if init_file is None:
            has = "no init_cfg=dict(type='Pretrained', checkpoint=...)"
            fix = ("set model.backbone.init_cfg=dict(type='Pretrained', "
                   'checkpoint=...) to the file the run trained from')
        else:
            has = f'from {init_file}'
            fix = ('set model.backbone.init_cfg.checkpoint to the file the '
                   'run trained from (with the same content)')
        message = user_message(
            'The checkpoint was trained on other backbone weights than '
            "the model's.",
            where=_where(f'\n    trained on: {recorded} (from {trained_on})'
                         f'\n    model has:  {current} ({has})'),
            fix=f'{fix}, or set model.allow_other_backbone_weights=True '
            'to use these weights anyway (the prompts and head were not '
            'trained for them).',
            docs=DOCS)
        if not allow:
            raise CheckpointError(message)
        print_log(
            'allow_other_backbone_weights=True: loading anyway. ' + message,
            logger='current',
            level=logging.WARNING)
    backbone_state = module.backbone.state_dict()
    for key in missing:
        state_dict[full_prefix + key] = backbone_state[key]
    print_log(
        f'Trainable-only checkpoint: {len(missing)} frozen backbone tensors '
        f'taken from the model ({init_file or "its own backbone"}, '
        f'{current}).',
        logger='current')


def _after_load(module: nn.Module, incompatible_keys) -> None:
    prefix = module.__dict__.pop(_PREFIX_ATTR, '')
    missing = [
        key[len(prefix):] for key in incompatible_keys.missing_keys
        if key.startswith(prefix)
    ]
    unexpected = [
        key[len(prefix):] for key in incompatible_keys.unexpected_keys
        if key.startswith(prefix)
    ]
    if not missing and not unexpected:
        return
    problems, lines = [], []
    if missing:
        problems.append(f'lacks {len(missing)} key(s) of the model')
        lines.append(f'missing:    {_preview(missing)}')
    if unexpected:
        problems.append(f'has {len(unexpected)} key(s) the model does not '
                        'have')
        lines.append(f'unexpected: {_preview(unexpected)}')
    raise CheckpointError(
        user_message(
            f'The checkpoint does not fit {_describe(module)}: it '
            f'{" and ".join(problems)}.',
            where=_where('\n    ' + '\n    '.join(lines)),
            fix=_key_fix(module, missing, unexpected),
            docs=DOCS))


def _key_fix(module: nn.Module, missing: List[str],
             unexpected: List[str]) -> str:
    backbone_keys = set(module.backbone.state_dict(keep_vars=True))
    if unexpected and all(key in backbone_keys for key in unexpected):
        return ("this looks like backbone weights (keys without "
                "'backbone.'): a pretrained backbone belongs in "
                "model.backbone.init_cfg=dict(type='Pretrained', "
                "checkpoint=...); test a checkpoint written by "
                'tools/train.py.')
    if any(key.startswith(_BACKBONE) for key in missing) and not getattr(
            module, 'freeze_backbone', True):
        return ('the file has no backbone weights but this model trains its '
                'backbone (freeze_backbone=False): load a full checkpoint or '
                'use the training config.')
    if any(key.startswith('neck.') for key in missing + unexpected):
        return ('the checkpoint was trained with another prompt neck (VPT '
                'or VAPT, deep or shallow): load it with the config it was '
                'trained with.')
    return 'load it with the config it was trained with.'
