"""Build :class:`BenchmarkCase` objects from named methods or config files."""
import copy
import logging
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.utils import to_2tuple
from mmpretrain.registry import MODELS

from ..utils.user_errors import ConfigError
from .benchmark_case import BenchmarkCase
from .method_specs import (FAST_PATH_MODES, MethodSpec, backbone_preset,
                           method_model_cfg)

__all__ = [
    'build_bare_case', 'build_method_cases', 'build_config_cases',
    'load_model_cfg'
]

BARE_LABEL = 'bare'


def _image_size(model: nn.Module, label: str) -> Tuple[int, int]:
    """(H, W) the model's backbone was configured for."""
    backbone = getattr(model, 'backbone', None)
    img_size = getattr(backbone, 'img_size', None)
    if img_size is not None:
        return tuple(to_2tuple(img_size))
    adapter = getattr(model, 'backbone_adapter', None)
    if adapter is not None:
        grid, patch = adapter.patch_grid, adapter.patch_size
        return grid[0] * patch[0], grid[1] * patch[1]
    raise ConfigError(
        f'Benchmark row {label!r}: cannot tell the input size of backbone '
        f'{type(backbone).__name__} (it has no img_size attribute).')


def _build_model(model_cfg: dict, label: str) -> nn.Module:
    """``MODELS.build`` with a clear error for an unsupported fast_path."""
    try:
        return MODELS.build(model_cfg)
    except TypeError as error:
        if 'fast_path' in str(error):
            neck = model_cfg.get('neck') or {}
            raise TypeError(
                f'Benchmark row {label!r}: {neck.get("type", "the neck")} '
                'does not accept a fast_path argument in this vapt_mm '
                f'version ({error}). Leave out --fast-path and the '
                ':fast/:plain suffixes.') from error
        raise


def build_bare_case(backbone: Union[dict, nn.Module],
                    label: str = BARE_LABEL,
                    **case_kwargs) -> BenchmarkCase:
    """The bare-backbone row: the frozen backbone, no prompts, no head.

    The backbone runs exactly as in a ``PromptedClassifier`` without neck
    (its own unmasked forward). The training step back-propagates the sum
    of its outputs to the input images (see :class:`BenchmarkCase`).

    Args:
        backbone (dict | nn.Module): Backbone config or built backbone (a
            built one is frozen in place).
        label (str): Row name. Defaults to 'bare'.
        **case_kwargs: ``batch_size`` (required), ``infer_batch_size``,
            ``device``, ``seed``, ``info``; see :class:`BenchmarkCase`.

    Returns:
        BenchmarkCase: The bare row.

    Example:
        >>> case = build_bare_case(
        ...     dict(type='VisionTransformer', arch='deit-tiny',
        ...          img_size=32, patch_size=8), batch_size=2)
        >>> _ = case.train_step()
        >>> case.train_inputs.grad.shape
        torch.Size([2, 3, 32, 32])
    """
    if isinstance(backbone, dict):
        backbone = copy.deepcopy(backbone)
    model = _build_model(
        dict(type='PromptedClassifier', backbone=backbone), label)
    info = dict(case_kwargs.pop('info', None) or {})
    info.setdefault('source', 'bare backbone')
    return BenchmarkCase(
        label,
        model,
        _image_size(model, label),
        bare=True,
        info=info,
        **case_kwargs)


def build_method_cases(specs: Sequence[MethodSpec],
                       backbone: Union[str, dict] = 'vit-b16',
                       num_classes: int = 10,
                       share_backbone: bool = True,
                       **case_kwargs) -> List[BenchmarkCase]:
    """Cases for named methods on one backbone.

    Args:
        specs (Sequence[MethodSpec]): From
            :func:`~vapt_mm.benchmark.parse_methods`.
        backbone (str | dict): A preset name (see
            :data:`~vapt_mm.benchmark.BACKBONE_PRESETS`) or a backbone
            config. Defaults to 'vit-b16'.
        num_classes (int): Classes of the linear head. Defaults to 10.
        share_backbone (bool): Let every method with a frozen backbone use
            one backbone module (it is never updated, and sharing saves
            memory); ``full`` always builds its own. Defaults to True.
        **case_kwargs: See :class:`BenchmarkCase` (``batch_size`` is
            required).

    Returns:
        list[BenchmarkCase]: One case per spec, in order.

    Example:
        >>> from vapt_mm.benchmark import parse_methods
        >>> cases = build_method_cases(parse_methods(['bare', 'vapt:4']),
        ...                            'tiny', batch_size=2)
        >>> [(c.label, c.num_trainable) for c in cases]
        [('bare', 0), ('vapt:4', 2102)]
    """
    backbone_name = backbone if isinstance(backbone, str) else None
    backbone_cfg = (backbone_preset(backbone)
                    if isinstance(backbone, str) else copy.deepcopy(backbone))
    shared = MODELS.build(copy.deepcopy(backbone_cfg))
    embed_dims = getattr(shared, 'embed_dims', None)
    if not isinstance(embed_dims, int):
        raise ConfigError(
            f'Benchmark backbone {backbone_cfg.get("type")!r} has no integer '
            'embed_dims attribute to size the linear head with.')
    cases = []
    for spec in specs:
        cfg = method_model_cfg(spec, backbone_cfg, embed_dims, num_classes)
        if share_backbone and spec.kind != 'full':
            cfg['backbone'] = shared
        info = dict(
            source='method',
            method=spec.label,
            backbone=backbone_name or backbone_cfg.get('type'),
            fast_path=spec.fast_path if spec.fast_path_set else 'unset')
        kwargs = dict(case_kwargs, info=info)
        if spec.kind == 'bare':
            cases.append(
                build_bare_case(cfg['backbone'], spec.label, **kwargs))
            continue
        model = _build_model(cfg, spec.label)
        cases.append(
            BenchmarkCase(
                spec.label,
                model,
                _image_size(model, spec.label),
                num_classes=num_classes,
                **kwargs))
    return cases


def load_model_cfg(config: str,
                   cfg_options: Optional[dict] = None) -> dict:
    """The ``model`` dict of an mmengine config file.

    ``custom_imports`` are imported and the config's ``default_scope``
    (mmpretrain if unset) becomes the default registry scope.

    Args:
        config (str): Path of the config file.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.

    Returns:
        dict: A deep copy of ``cfg.model``.

    Example:
        >>> model_cfg = load_model_cfg('configs/vapt/vit-b16_vtab-eurosat.py')
        >>> model_cfg['neck']['type']
        'VAPTNeck'
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'Benchmark config {config!r} does not exist.')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if not isinstance(cfg.get('model'), dict):
        raise ConfigError(
            f'Benchmark config {config!r} has no `model` dict to build.')
    return copy.deepcopy(cfg.model.to_dict())


def _config_labels(configs: Sequence[str]) -> List[str]:
    """Config file names without '.py', the path where names collide."""
    stems = [osp.splitext(osp.basename(path))[0] for path in configs]
    return [
        stem if stems.count(stem) == 1 else osp.splitext(path)[0]
        for stem, path in zip(stems, configs)
    ]


def _without_init_cfg(cfg: dict) -> dict:
    return {key: value for key, value in cfg.items() if key != 'init_cfg'}


def build_config_cases(
        configs: Sequence[str],
        cfg_options: Optional[dict] = None,
        fast_path_mode: Optional[str] = None,
        num_classes: int = 10,
        **case_kwargs) -> Tuple[List[BenchmarkCase], Optional[dict]]:
    """Cases for the models of config files.

    Each config's ``model`` is built as it is (weights are not loaded:
    speed and memory do not depend on them). The row is named after the
    file.

    Args:
        configs (Sequence[str]): Config file paths.
        cfg_options (dict, optional): Overrides applied to every config.
        fast_path_mode (str, optional): 'auto', 'on', 'off' or 'both' sets
            the ``fast_path`` of configs that have a neck ('both' gives two
            rows, suffixed ':fast' and ':plain'); None leaves the configs as
            they are. Defaults to None.
        num_classes (int): Label range for a head without ``num_classes``.
            Defaults to 10.
        **case_kwargs: See :class:`BenchmarkCase` (``batch_size`` is
            required).

    Returns:
        tuple: The cases, and the backbone config of the first config (to
        build the bare row from), or None if it has none.

    Example:
        >>> cases, backbone = build_config_cases(
        ...     ['configs/vapt/vit-b16_vtab-eurosat.py'], batch_size=2)
        >>> cases[0].label
        'vit-b16_vtab-eurosat'
    """
    if fast_path_mode is not None and fast_path_mode not in FAST_PATH_MODES:
        raise ConfigError(
            f'Unknown fast-path mode {fast_path_mode!r}; expected one of '
            f'{", ".join(FAST_PATH_MODES)}.')
    cases = []
    first_backbone = None
    for path, label in zip(configs, _config_labels(configs)):
        model_cfg = load_model_cfg(path, cfg_options)
        backbone = model_cfg.get('backbone')
        if first_backbone is None:
            first_backbone = copy.deepcopy(backbone)
        elif isinstance(backbone, dict) and _without_init_cfg(
                backbone) != _without_init_cfg(first_backbone):
            print_log(
                f'Benchmark config {path} has another backbone than the '
                f'first config; the bare row and the ratios refer to the '
                f"first config's backbone.",
                logger='current',
                level=logging.WARNING)
        variants = [(label, 'unset')]
        if fast_path_mode is not None and model_cfg.get('neck'):
            variants = [(label if value is None else
                         f'{label}:{"fast" if value else "plain"}', value)
                        for value in FAST_PATH_MODES[fast_path_mode]]
        for row_label, fast_path in variants:
            row_cfg = copy.deepcopy(model_cfg)
            if fast_path != 'unset':
                row_cfg['neck']['fast_path'] = fast_path
            model = _build_model(row_cfg, row_label)
            head_classes = getattr(getattr(model, 'head', None),
                                   'num_classes', None)
            cases.append(
                BenchmarkCase(
                    row_label,
                    model,
                    _image_size(model, row_label),
                    num_classes=head_classes or num_classes,
                    info=dict(
                        source='config', config=path, fast_path=fast_path),
                    **case_kwargs))
    return cases, first_backbone
