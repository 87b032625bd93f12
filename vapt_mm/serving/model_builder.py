"""The model a server runs: one frozen backbone from a base config, every
prompt file a task of a :class:`MultiTaskPromptedClassifier`."""
import copy
import logging
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger, print_log
from mmengine.registry import init_default_scope

from ..apis.multi_task import add_prompt_file_task
from ..apis.prompt_file import read_prompt_file_header
from ..engine.preflight import load_config
from ..models.classifiers.multi_task_classifier import \
    MultiTaskPromptedClassifier
from ..utils.user_errors import ConfigError, user_message
from .task_specs import DOCS, TaskSpec

__all__ = [
    'ServedModel', 'load_base_config', 'build_served_model', 'describe_tasks'
]


class ServedModel(NamedTuple):
    """The model and the class names of each task (None: not recorded)."""
    model: MultiTaskPromptedClassifier
    classes: Dict[str, Optional[List[str]]]


def load_base_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read the base config, apply ``--cfg-options`` and set the default
    scope (mmpretrain's, unless the config names another).

    Args:
        path (str): The config file (any training config of the backbone).
        cfg_options (dict, optional): Overrides, as ``DictAction`` parses
            them (``{'model.backbone.init_cfg.checkpoint': 'vit.pth'}``).

    Returns:
        Config: The config.

    Raises:
        MissingFileError: The file does not exist.

    Example:
        >>> load_base_config('configs/vapt/vit-b16_vtab-eurosat.py'
        ...                  ).model.backbone.type
        'VisionTransformer'
    """
    cfg = load_config(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return cfg


def _init_quietly(model: MultiTaskPromptedClassifier) -> None:
    """Load the pretrained backbone without mmengine's per-parameter
    initialisation report (hundreds of lines for a ViT-B); warnings and
    errors still show."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def build_served_model(cfg: Config,
                       tasks: Sequence[TaskSpec],
                       device: str = 'cpu') -> ServedModel:
    """Build the multi-task model of a base config and prompt files.

    The backbone (with its ``Pretrained`` ``init_cfg``), the backbone
    adapter options and the data preprocessor (the model's, else the
    config's top-level one, as mmengine's Runner does) come from
    ``cfg.model``; the backbone loads its pretrained weights, then every
    prompt file becomes a task
    (:func:`~vapt_mm.apis.add_prompt_file_task`: built from the file's
    config, loaded strictly, refused when trained on other backbone
    weights).

    Args:
        cfg (Config): The base config (:func:`load_base_config`).
        tasks (Sequence[TaskSpec]): Task names and prompt files.
        device (str): Where the model runs. Defaults to 'cpu'.

    Returns:
        ServedModel: The model in eval mode on ``device`` and each task's
        class names.

    Raises:
        ConfigError: The config has no backbone, or a prompt file trained
            backbone parameters (refused by ``add_prompt_file_task``).
        CheckpointError: A prompt file does not fit the backbone.

    Example:
        >>> cfg = load_base_config('configs/vapt/vit-b16_vtab-eurosat.py')
        >>> served = build_served_model(
        ...     cfg, [TaskSpec('eurosat', 'eurosat.safetensors')])
        ... # doctest: +SKIP
        >>> served.model.task_names  # doctest: +SKIP
        ['eurosat']
    """
    model_cfg = cfg.get('model') or {}
    if not model_cfg.get('backbone'):
        raise ConfigError(
            user_message(
                'The base config has no model.backbone to share.',
                where=cfg.filename,
                fix='pass a training config of the backbone (e.g. one of '
                'configs/vapt/).',
                docs=DOCS))
    preprocessor = model_cfg.get('data_preprocessor') or cfg.get(
        'data_preprocessor')
    model = MultiTaskPromptedClassifier(
        backbone=copy.deepcopy(model_cfg['backbone']),
        adapter_cfg=copy.deepcopy(model_cfg.get('adapter_cfg')),
        data_preprocessor=copy.deepcopy(preprocessor))
    _init_quietly(model)
    classes: Dict[str, Optional[List[str]]] = {}
    for task in tasks:
        header = read_prompt_file_header(task.path)
        add_prompt_file_task(model, task.path, task.name)
        classes[task.name] = header.get('classes')
    model.to(torch.device(device)).eval()
    print_log(
        f'Serving {len(tasks)} task(s) on one {type(model.backbone).__name__}'
        f' ({device}): {", ".join(model.task_names)}',
        logger='current')
    return ServedModel(model, classes)


def describe_tasks(served: ServedModel) -> List[dict]:
    """What ``GET /tasks`` answers: one entry per task, in the model's
    order.

    Args:
        served (ServedModel): The model and its class names.

    Returns:
        list[dict]: ``name``, ``num_classes``, ``neck`` (class name),
        ``num_tokens``, ``deep`` (``VPTNeck``'s flag, None for other
        necks) and ``classes`` (None when the prompt file records none).

    Example:
        >>> describe_tasks(served)[0]  # doctest: +SKIP
        {'name': 'eurosat', 'num_classes': 10, 'neck': 'VAPTNeck',
         'num_tokens': 10, 'deep': None, 'classes': ['AnnualCrop', ...]}
    """
    entries = []
    for name in served.model.task_names:
        neck = served.model.necks[name]
        head = served.model.heads[name]
        entries.append(
            dict(
                name=name,
                num_classes=getattr(head, 'num_classes', None),
                neck=type(neck).__name__,
                num_tokens=neck.num_tokens,
                deep=getattr(neck, 'deep', None),
                classes=served.classes.get(name)))
    return entries
