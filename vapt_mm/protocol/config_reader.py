"""Read the facts a sweep needs from a training config.

The config is loaded the way ``tools/train.py`` loads it (``--cfg-options``
merged), without importing its ``custom_imports``: only values are read.

Example:
    >>> from vapt_mm.protocol.config_reader import read_sweep_config
    >>> info = read_sweep_config('configs/vapt/vit-b16_vtab-eurosat.py')
    >>> info.task, info.batch_size, info.max_epochs, info.method
    ('eurosat', 64, 100, 'VAPT')
"""
import argparse
import os.path as osp
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config, DictAction

from vapt_mm.utils.user_errors import (ConfigError, ConfigKeyError,
                                       MissingFileError)
from .suites import SuiteSpec, get_suite

__all__ = [
    'SweepConfigInfo', 'parse_cfg_options', 'option_key', 'load_config',
    'read_sweep_config', 'method_name'
]


class SweepConfigInfo(NamedTuple):
    """What a sweep reads from a config.

    Args:
        path (str): The config file.
        suite (SuiteSpec): The suite (VTAB-1k, FGVC) of its training
            dataset. ``benchmark`` is its deprecated name.
        task (str): The task the config trains on as written.
        batch_size (int): ``train_dataloader.batch_size``.
        max_epochs (int): ``train_cfg.max_epochs``.
        method (str): Method name for tables (see :func:`method_name`).
        has_auto_scale_lr (bool): Whether the config has ``auto_scale_lr``.
        has_test_dataloader (bool): Whether it has a ``test_dataloader``.
    """

    path: str
    suite: SuiteSpec
    task: str
    batch_size: int
    max_epochs: int
    method: str
    has_auto_scale_lr: bool
    has_test_dataloader: bool

    @property
    def benchmark(self) -> SuiteSpec:
        """Deprecated name of :attr:`suite`."""
        warnings.warn(
            'SweepConfigInfo.benchmark is deprecated; use '
            'SweepConfigInfo.suite.',
            DeprecationWarning,
            stacklevel=2)
        return self.suite


def option_key(option: str) -> str:
    """The key of a ``key=value`` option; raises on text without ``=``.

    Args:
        option (str): One ``--cfg-options`` item.

    Returns:
        str: The key.

    Example:
        >>> option_key('train_dataloader.batch_size=32')
        'train_dataloader.batch_size'
    """
    key, sep, _ = option.partition('=')
    if not sep or not key:
        raise ConfigError(f'--cfg-options: {option!r} is not a key=value '
                          'pair.')
    return key


def parse_cfg_options(options: Sequence[str]) -> Dict[str, object]:
    """Parse ``key=value`` strings exactly like ``--cfg-options`` does.

    Args:
        options (Sequence[str]): The option strings.

    Returns:
        dict: Key to parsed value (ints, floats, bools, None, lists).

    Example:
        >>> parse_cfg_options(['a.b=1', 'c=[1,2]', 'd=text'])
        {'a.b': 1, 'c': [1, 2], 'd': 'text'}
    """
    for option in options:
        option_key(option)
    if not options:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return dict(parser.parse_args(['--cfg-options', *options]).cfg_options)


def load_config(path: str, options: Sequence[str] = ()) -> Config:
    """Load a config and merge ``key=value`` options into it.

    Args:
        path (str): Config file.
        options (Sequence[str]): ``--cfg-options`` items.

    Returns:
        Config: The merged config (custom imports not executed).

    Example:
        >>> cfg = load_config('configs/vapt/vit-b16_vtab-eurosat.py',
        ...                   ['train_dataloader.batch_size=32'])
        >>> cfg.train_dataloader.batch_size
        32
    """
    if not osp.isfile(path):
        raise MissingFileError(f'Config file {path} does not exist.')
    cfg = Config.fromfile(path, import_custom_modules=False)
    parsed = parse_cfg_options(options)
    if parsed:
        cfg.merge_from_dict(parsed)
    return cfg


def method_name(model_cfg: Optional[dict]) -> str:
    """A short method name for a model config.

    ``VAPTNeck`` -> ``'VAPT'``; ``VPTNeck`` -> ``'VPT-deep'`` or
    ``'VPT-shallow'``; a ``PromptedClassifier`` without neck ->
    ``'Linear'``; anything else -> the model type.

    Args:
        model_cfg (dict, optional): ``cfg.model``.

    Returns:
        str: The name.

    Example:
        >>> method_name(dict(type='PromptedClassifier',
        ...                  neck=dict(type='VPTNeck', deep=True)))
        'VPT-deep'
    """
    if not model_cfg:
        return 'unknown'
    neck = model_cfg.get('neck', None)
    neck_type = neck.get('type', '') if isinstance(neck, dict) else ''
    if neck_type == 'VAPTNeck':
        return 'VAPT'
    if neck_type == 'VPTNeck':
        return 'VPT-deep' if neck.get('deep', False) else 'VPT-shallow'
    if neck is None and model_cfg.get('type') == 'PromptedClassifier':
        return 'Linear'
    return str(model_cfg.get('type', 'unknown'))


def _require(cfg: Config, path: List[str], what: str, config_path: str):
    node = cfg
    for i, key in enumerate(path):
        node = node.get(key, None) if hasattr(node, 'get') else None
        if node is None:
            raise ConfigKeyError(
                f'{config_path}: the sweep needs '
                f'`{".".join(path[:i + 1])}` ({what}), which the '
                'config does not set.')
    return node


def read_sweep_config(path: str,
                      options: Sequence[str] = ()) -> SweepConfigInfo:
    """Load a config (with options) and read what a sweep needs.

    Args:
        path (str): Config file.
        options (Sequence[str]): ``--cfg-options`` items given to the sweep.

    Returns:
        SweepConfigInfo: The facts.

    Raises:
        KeyError: If a needed field is missing (named in the message).
        ValueError: If a field has an unusable value.
    """
    cfg = load_config(path, options)
    dataset_type = _require(cfg, ['train_dataloader', 'dataset', 'type'],
                            'the training dataset type', path)
    suite = get_suite(dataset_type)
    task = _require(cfg, ['train_dataloader', 'dataset', suite.task_key],
                    f'the {dataset_type} task', path)
    _require(cfg, ['val_dataloader', 'dataset'],
             'the validation data the runs are scored on', path)
    val_type = cfg.val_dataloader.dataset.get('type')
    if val_type != dataset_type:
        raise ConfigError(
            f'{path}: val_dataloader.dataset.type is {val_type!r} but the '
            f'training dataset is {dataset_type!r}; the sweep switches the '
            'splits of both, so they must be the same dataset type.')
    batch_size = _require(cfg, ['train_dataloader', 'batch_size'],
                          'the batch size that scales the base lr', path)
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f'{path}: train_dataloader.batch_size must be a '
                          f'positive int, got {batch_size!r}.')
    _require(cfg, ['optim_wrapper', 'optimizer'],
             'the optimizer whose lr and weight_decay the sweep sets', path)
    train_cfg = _require(cfg, ['train_cfg'], 'the training loop', path)
    if not train_cfg.get('by_epoch', True) or 'max_epochs' not in train_cfg:
        raise ConfigError(
            f'{path}: the sweep needs an epoch-based train_cfg with '
            f'max_epochs (the published protocol trains 100 epochs), got '
            f'train_cfg={dict(train_cfg)!r}.')
    max_epochs = train_cfg['max_epochs']
    if not isinstance(max_epochs, int) or max_epochs <= 0:
        raise ConfigError(f'{path}: train_cfg.max_epochs must be a positive '
                          f'int, got {max_epochs!r}.')
    return SweepConfigInfo(
        path=path,
        suite=suite,
        task=task,
        batch_size=batch_size,
        max_epochs=max_epochs,
        method=method_name(cfg.get('model', None)),
        has_auto_scale_lr=cfg.get('auto_scale_lr', None) is not None,
        has_test_dataloader=cfg.get('test_dataloader', None) is not None)
