"""The checks ``tools/train.py`` and ``tools/test.py`` run before the Runner.

They run on the merged config, before ``Runner.from_cfg`` prints its
environment and config, and take a second or two: they read annotation
files (not images), build the backbone on the ``meta`` device and read the
pretrained file's tensor shapes. The first problem found is raised as a
:class:`~vapt_mm.utils.user_errors.UserError` naming the file, key or value,
what was expected and the section of ``docs/errors.md`` that explains it.

What is checked (``docs/errors.md`` lists every error):

* every dataset a used dataloader reads (VTAB1k, FGVC, CustomDataset
  annotation files; others are skipped with a log line): data root and
  folders exist, annotation files exist, parse and are not empty, labels
  are within the data set's classes;
* ``model.head.num_classes``: above every label, and equal to the class
  count of a VTAB-1k task / FGVC data set;
* ``model.head.in_channels`` equals the backbone width (when the neck keeps
  the width);
* training only: the backbone's ``Pretrained`` file exists and fits.

Example:
    >>> from mmengine.config import Config
    >>> cfg = Config.fromfile('configs/vapt/vit-b16_vtab-eurosat.py')
    >>> preflight_train(cfg)  # raises if something above is wrong
"""
import os.path as osp
from typing import List, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from ...utils.user_errors import (MissingFileError, UserError, errors_doc,
                                  user_message)
from .model_checks import (build_backbone_on_meta, check_head_fits_labels,
                           check_head_in_channels, check_pretrained_backbone)
from .split_labels import SplitLabels, read_split_labels

__all__ = [
    'load_config', 'preflight_train', 'preflight_test', 'check_dataloaders'
]


def load_config(path: str) -> Config:
    """``Config.fromfile``, with a user error for a missing file.

    Args:
        path (str): The config file.

    Returns:
        Config: The loaded config.

    Raises:
        MissingFileError: The file does not exist.

    Example:
        >>> load_config('configs/vapt/vit-b16_vtab-eurosat.py').model.type
        'PromptedClassifier'
    """
    if not osp.isfile(path):
        raise MissingFileError(
            user_message(
                f'The config file {path!r} does not exist.',
                where=path,
                fix='check the path (configs/ holds the method configs)',
                docs=errors_doc('config-file')))
    return Config.fromfile(path)


def _used_loaders(cfg, fields: Sequence[str]) -> List[str]:
    used = []
    for field in fields:
        loader = cfg.get(field, None)
        if not loader:
            continue
        if field == 'val_dataloader' and cfg.get('val_cfg', None) is None:
            continue  # --no-validate: the Runner builds no val loop
        used.append(field)
    return used


def check_dataloaders(cfg, fields: Sequence[str]) -> List[SplitLabels]:
    """Check the datasets of the given dataloaders; return their labels.

    Args:
        cfg (Config): The merged config.
        fields (Sequence[str]): Dataloader fields, e.g.
            ``('train_dataloader', 'val_dataloader')``; missing ones and a
            ``val_dataloader`` without ``val_cfg`` are left out.

    Returns:
        list[SplitLabels]: One entry per checked dataset.

    Raises:
        UserError: The first problem found (see :func:`read_split_labels`).

    Example:
        >>> [e.description for e in check_dataloaders(
        ...     cfg, ['train_dataloader'])]  # doctest: +SKIP
        ['VTAB1k eurosat/train800val200']
    """
    labels: List[SplitLabels] = []
    for field in _used_loaders(cfg, fields):
        dataset_cfg = cfg[field].get('dataset', None)
        if dataset_cfg is None:
            continue
        try:
            found, skipped = read_split_labels(dataset_cfg, field)
        except UserError as err:
            # same class, one more line: the config entry to look at
            raise type(err)(f'{err}\n  config: {field}.dataset') from err
        labels += found
        for reason in skipped:
            print_log(f'Preflight: not checked: {reason}.', logger='current')
    return labels


def _check_model(cfg, labels: Sequence[SplitLabels],
                 pretrained: bool) -> List[str]:
    """Head and backbone checks; return what the log should say."""
    model = cfg.get('model', None) or {}
    notes = []
    skipped = check_head_fits_labels(model.get('head', None), labels)
    if skipped:
        notes.append(f'labels not compared ({skipped})')
    backbone_cfg = model.get('backbone', None)
    if not isinstance(backbone_cfg, dict):
        notes.append('no backbone config')
        return notes
    backbone = build_backbone_on_meta(backbone_cfg)
    skipped = check_head_in_channels(model, backbone)
    notes.append(f'head.in_channels not compared ({skipped})'
                 if skipped else 'head.in_channels = backbone width')
    if pretrained:
        checked = check_pretrained_backbone(backbone, backbone_cfg)
        if checked:
            notes.append(f'pretrained file {checked} fits')
    return notes


def _log(labels: Sequence[SplitLabels], notes: Sequence[str]) -> None:
    parts = []
    for entry in labels:
        count = '' if entry.count is None else f', {entry.count} images'
        top = ('no labels' if entry.max_label is None else
               f'labels 0..{entry.max_label}')
        parts.append(f'{entry.loader}: {entry.description}{count}, {top}')
    print_log(
        'Preflight passed: ' + '; '.join(parts + list(notes)) + '.',
        logger='current')


def preflight_train(cfg, check_pretrained: bool = True) -> None:
    """Checks before training: data of the train / val loaders, the head,
    the backbone width and the pretrained file.

    Args:
        cfg (Config): The merged config (``tools/train.py`` after
            ``--cfg-options``).
        check_pretrained (bool): Check the backbone's ``Pretrained`` file.
            Defaults to True.

    Raises:
        UserError: The first problem found.

    Example:
        >>> preflight_train(Config.fromfile(
        ...     'configs/vapt/vit-b16_vtab-eurosat.py'))  # doctest: +SKIP
    """
    labels = check_dataloaders(cfg, ('train_dataloader', 'val_dataloader'))
    _log(labels, _check_model(cfg, labels, check_pretrained))


def preflight_test(cfg) -> None:
    """Checks before testing: data of the test loader and the head.

    The checkpoint given to ``tools/test.py`` is checked there (it must
    exist); the pretrained file is left to the checkpoint loading.

    Args:
        cfg (Config): The merged config.

    Raises:
        UserError: The first problem found.

    Example:
        >>> preflight_test(Config.fromfile(
        ...     'configs/vapt/vit-b16_vtab-eurosat.py'))  # doctest: +SKIP
    """
    labels = check_dataloaders(cfg, ('test_dataloader', ))
    _log(labels, _check_model(cfg, labels, pretrained=False))
