"""Read the labels of a dataloader's dataset from its annotation files.

The preflight of ``tools/train.py`` / ``tools/test.py`` needs, for every
dataset a config's dataloaders use, that its files exist, that it lists at
least one image and the largest label it holds. This module gets them from
the annotation files alone (small text / JSON files; images are not
touched), with the same checks the datasets run when they are built:

* :class:`~vapt_mm.datasets.VTAB1k` and :class:`~vapt_mm.datasets.FGVC`
  through :func:`~vapt_mm.datasets.vtab1k.load_vtab1k_split` and
  :func:`~vapt_mm.datasets.fgvc.read_fgvc_split`;
* mmpretrain's ``CustomDataset`` (and subclasses such as ``ImageNet``) with
  an ``ann_file`` of ``'<path> <label>'`` lines; a plain ``CustomDataset``
  without ``ann_file`` (one sub-folder per class) by its class folders;
* dataset wrappers (``dataset=...`` / ``datasets=[...]``) by what they wrap.

Any other dataset type is skipped; :func:`read_split_labels` says so.

Example:
    >>> from mmengine.config import Config
    >>> cfg = Config.fromfile('configs/vapt/vit-b16_vtab-eurosat.py')
    >>> labels, skipped = read_split_labels(cfg.train_dataloader.dataset,
    ...                                     'train_dataloader')
    >>> labels[0].max_label, labels[0].num_classes
    (9, 10)
"""
import os
import os.path as osp
from typing import List, NamedTuple, Optional, Tuple

from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

from ...datasets.annotation_files import (check_dir, check_file,
                                          check_not_empty, parse_vtab1k_list)
from ...datasets.task_info import (FGVC_DATASETS, FGVC_SPLIT_SOURCES,
                                   VTAB1K_NUM_CLASSES, docs_hint)
from ...datasets.fgvc import FGVC, fgvc_dataset_path, read_fgvc_split
from ...datasets.vtab1k import VTAB1k, load_vtab1k_split
from ...utils.user_errors import ConfigKeyError, DataError, errors_doc

__all__ = ['SplitLabels', 'read_split_labels']

_LIST_LINES = "'<relative/path.ext> <integer label>' lines"


class SplitLabels(NamedTuple):
    """The labels one dataset (split) of a dataloader holds.

    Args:
        loader (str): The config field, e.g. ``'train_dataloader'``.
        description (str): The dataset, e.g. ``'VTAB1k eurosat/test'``.
        source (str): The annotation file(s) or folder the labels come from.
        count (int, optional): Number of images listed (None: not counted,
            for class folders).
        max_label (int, optional): The largest label (None: the dataset has
            no labels, ``with_label=False``).
        max_label_at (str): Where the largest label is written, e.g.
            ``'line 17'``.
        num_classes (int, optional): The class count the data set itself
            defines (VTAB-1k task, FGVC data set); None when unknown.
    """

    loader: str
    description: str
    source: str
    count: Optional[int]
    max_label: Optional[int]
    max_label_at: str
    num_classes: Optional[int]


def read_split_labels(dataset_cfg: dict,
                      loader: str) -> Tuple[List[SplitLabels], List[str]]:
    """Check a dataset config's annotation files and read their labels.

    Args:
        dataset_cfg (dict): The ``dataset`` entry of a dataloader config.
        loader (str): The dataloader's config field, for the messages.

    Returns:
        tuple: ``(labels, skipped)``: one :class:`SplitLabels` per checked
        dataset (a wrapper gives one per wrapped dataset), and a description
        of each dataset that was not checked (unsupported type, remote
        storage).

    Raises:
        ConfigError: For an unknown task, split or data set name.
        MissingFileError: For a missing data root, folder or annotation
            file.
        DataError: For an annotation file that does not parse, lists
            nothing or holds a label outside the data set's classes.

    Example:
        >>> cfg = dict(type='VTAB1k', data_root='data/vtab-1k', task='dtd',
        ...            split='test')
        >>> labels, _ = read_split_labels(cfg, 'test_dataloader')
        >>> labels[0].max_label
        46
    """
    labels: List[SplitLabels] = []
    skipped: List[str] = []
    _collect(dataset_cfg, loader, labels, skipped)
    return labels, skipped


def _collect(cfg: dict, loader: str, labels: List[SplitLabels],
             skipped: List[str]) -> None:
    """Add what one dataset config holds to ``labels`` / ``skipped``."""
    if not isinstance(cfg, dict):
        skipped.append(f'{loader}: a built dataset object ({type(cfg)})')
        return
    wrapped = cfg.get('datasets', None)
    if isinstance(wrapped, (list, tuple)):
        for inner in wrapped:
            _collect(inner, loader, labels, skipped)
        return
    if isinstance(cfg.get('dataset', None), dict):
        _collect(cfg['dataset'], loader, labels, skipped)
        return
    dataset_type = cfg.get('type', None)
    cls = (dataset_type if isinstance(dataset_type, type) else
           DATASETS.get(dataset_type) if isinstance(dataset_type, str) else
           None)
    name = getattr(cls, '__name__', str(dataset_type))
    if cls is None:
        skipped.append(f'{loader}: dataset type {dataset_type!r} (not '
                       'registered)')
    elif issubclass(cls, VTAB1k):
        labels.append(_vtab1k_labels(cfg, loader))
    elif issubclass(cls, FGVC):
        labels.append(_fgvc_labels(cfg, loader))
    elif issubclass(cls, CustomDataset):
        entry = _custom_labels(cfg, loader, cls)
        if isinstance(entry, str):
            skipped.append(entry)
        else:
            labels.append(entry)
    else:
        skipped.append(f'{loader}: dataset type {name!r} (only VTAB1k, FGVC '
                       'and CustomDataset annotation files are read)')


def _require(cfg: dict, key: str, loader: str) -> str:
    """``cfg[key]``, or an error naming the missing config key."""
    value = cfg.get(key, None)
    if value is None:
        raise ConfigKeyError(
            f'{loader}.dataset.{key} is not set; {cfg.get("type")} needs it '
            f'(see {errors_doc("config-values")}).')
    return value


def _vtab1k_labels(cfg: dict, loader: str) -> SplitLabels:
    data_root = _require(cfg, 'data_root', loader)
    task = _require(cfg, 'task', loader)
    split = cfg.get('split', 'train800val200')
    entries = load_vtab1k_split(data_root, task, split)
    top = max(entries, key=lambda e: e.label)
    return SplitLabels(loader, f'VTAB1k {task}/{split}',
                       osp.join(data_root, task, f'{split}.txt'),
                       len(entries), top.label, f'line {top.line}',
                       VTAB1K_NUM_CLASSES[task])


def _fgvc_labels(cfg: dict, loader: str) -> SplitLabels:
    data_root = _require(cfg, 'data_root', loader)
    dataset = _require(cfg, 'dataset', loader)
    split = cfg.get('split', 'train')
    path = fgvc_dataset_path(data_root, dataset, cfg.get('dataset_dir', None))
    entries, _ = read_fgvc_split(path, dataset, split)
    top_path, top_label = max(entries, key=lambda e: e[1])
    source = ' + '.join(
        osp.join(path, f'{name}.json') for name in FGVC_SPLIT_SOURCES[split])
    return SplitLabels(loader, f'FGVC {dataset}/{split}', source, len(entries),
                       top_label, f'image {top_path!r}',
                       FGVC_DATASETS[dataset].num_classes)


def _is_remote(path: str) -> bool:
    return '://' in path


def _custom_labels(cfg: dict, loader: str, cls: type):
    """SplitLabels of a CustomDataset config, or why it is skipped."""
    name = cls.__name__
    data_root = osp.expanduser(cfg.get('data_root', '') or '')
    ann_file = osp.expanduser(cfg.get('ann_file', '') or '')
    if _is_remote(data_root) or _is_remote(ann_file):
        return f'{loader}: {name} on remote storage ({data_root or ann_file})'
    if data_root:
        check_dir(data_root, f'{loader}.dataset.data_root',
                  'the annotation files and images')
    if ann_file:
        if data_root and not osp.isabs(ann_file):
            ann_file = osp.join(data_root, ann_file)
        check_file(ann_file, f'Annotation file ({loader}.dataset.ann_file)',
                   _LIST_LINES)
        if not cfg.get('with_label', True):
            with open(ann_file, encoding='utf-8') as f:
                count = sum(1 for line in f if line.strip())
            check_not_empty(count, ann_file, 'one image path per line')
            return SplitLabels(loader, f'{name} {ann_file}', ann_file, count,
                               None, '', None)
        # mmpretrain reads every line, so a blank one would fail there
        entries = parse_vtab1k_list(ann_file, skip_blank_lines=False)
        check_not_empty(len(entries), ann_file, _LIST_LINES)
        low = min(entries, key=lambda e: e.label)
        if low.label < 0:
            raise DataError(
                f'{ann_file}, line {low.line}: label {low.label} is negative; '
                f'expected labels 0, 1, ... ({docs_hint("label-range")}).')
        top = max(entries, key=lambda e: e.label)
        return SplitLabels(loader, f'{name} {ann_file}', ann_file,
                           len(entries), top.label, f'line {top.line}', None)
    if cls is not CustomDataset:
        return (f'{loader}: {name} without ann_file (its own folder '
                'layout)')
    prefix = cfg.get('data_prefix', '') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '') or ''
    folder = osp.join(data_root, osp.expanduser(prefix))
    if _is_remote(folder):
        return f'{loader}: {name} on remote storage ({folder})'
    check_dir(folder, f'Image folder of {loader}.dataset (data_root + '
              'data_prefix)', 'one sub-folder of images per class')
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not classes:
        raise DataError(
            f'Image folder {folder!r} of {loader}.dataset has no class '
            'sub-folders; expected one sub-folder of images per class, or '
            f'an ann_file ({docs_hint("empty-annotation-file")}).')
    return SplitLabels(loader, f'{name} {folder}', folder, None,
                       len(classes) - 1, f'class folder {classes[-1]!r}',
                       None)
