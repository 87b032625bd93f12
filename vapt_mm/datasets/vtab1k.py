"""The VTAB-1k benchmark as an mmpretrain dataset."""
import os.path as osp
from typing import List, Sequence

from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.user_errors import (ConfigError, ConfigTypeError, DataError,
                                 MissingFileError)
from .annotation_files import (ListEntry, check_choice, check_dir,
                               check_file, check_not_empty,
                               find_missing_files, label_range_errors,
                               missing_files_message, parse_vtab1k_list)
from .task_info import (VTAB1K_NUM_CLASSES, VTAB1K_SPLITS,
                        VTAB1K_TASK_GROUP, VTAB1K_TASKS, docs_hint)

#: What a VTAB-1k list file holds, for the error messages.
_LIST_LINES = "'relative/path.ext label' lines"


def check_vtab1k_folders(data_root: str, task: str) -> None:
    """Check the task and its folders: the data root and the task folder.

    Args:
        data_root (str): Folder holding the 19 task folders.
        task (str): VTAB-1k task name.

    Raises:
        ConfigError: If ``task`` is not a VTAB-1k task.
        MissingFileError: If a folder is missing.

    Example:
        >>> check_vtab1k_folders('data/vtab-1k', 'dtd')
    """
    check_choice('VTAB-1k task', task, VTAB1K_TASKS)
    check_dir(data_root, 'VTAB-1k data root',
              f'the 19 task folders ({", ".join(VTAB1K_TASKS)})')
    check_dir(
        osp.join(data_root, task), f'VTAB-1k task folder of {task!r}',
        'the images and ' + ', '.join(f'{s}.txt' for s in VTAB1K_SPLITS))


def read_vtab1k_split(ann_file: str, task: str,
                      split: str) -> List[ListEntry]:
    """Read the list file of one split of one task and check its content.

    Checks that the file exists, that every line parses, that it lists at
    least one image and that every label is in ``[0, num_classes)`` of the
    task. Images are not touched.

    Args:
        ann_file (str): ``<data_root>/<task>/<split>.txt``.
        task (str): VTAB-1k task name.
        split (str): Split name (for the messages).

    Returns:
        list[ListEntry]: One entry per listed image.

    Raises:
        MissingFileError: If the file is missing.
        DataError: If a line does not parse, the file lists nothing or a
            label is out of range.

    Example:
        >>> entries = read_vtab1k_split('data/vtab-1k/dtd/test.txt', 'dtd',
        ...                             'test')
        >>> max(e.label for e in entries)
        46
    """
    check_file(
        ann_file, f'VTAB-1k annotation file for split {split!r} of task '
        f'{task!r}', _LIST_LINES)
    entries = parse_vtab1k_list(ann_file)
    check_not_empty(len(entries), ann_file, _LIST_LINES)
    errors = label_range_errors(entries, VTAB1K_NUM_CLASSES[task], ann_file)
    if errors:
        more = (f' ({len(errors) - 1} more labels are out of range)'
                if len(errors) > 1 else '')
        raise DataError(errors[0] + more)
    return entries


def load_vtab1k_split(data_root: str, task: str,
                      split: str) -> List[ListEntry]:
    """Check the folders of a task and read the list file of one split.

    What :class:`VTAB1k` checks when it is built, except that the images
    exist: the cheap check that ``tools/train.py`` runs before training.

    Args:
        data_root (str): Folder holding the 19 task folders.
        task (str): VTAB-1k task name.
        split (str): ``'train800'``, ``'val200'``, ``'train800val200'`` or
            ``'test'``.

    Returns:
        list[ListEntry]: One entry per listed image.

    Raises:
        ConfigError: If the task or split name is unknown.
        MissingFileError: If a folder or the list file is missing.
        DataError: If the list file is unusable (see
            :func:`read_vtab1k_split`).

    Example:
        >>> len(load_vtab1k_split('data/vtab-1k', 'dtd', 'train800'))
        800
    """
    check_vtab1k_folders(data_root, task)
    check_choice('VTAB-1k split', split, VTAB1K_SPLITS)
    return read_vtab1k_split(
        osp.join(data_root, task, f'{split}.txt'), task, split)


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """One task of VTAB-1k (19 tasks, 1,000 training images each).

    Expected layout (the common ``vtab-1k`` release)::

        data/vtab-1k/                   <- data_root
        ├── caltech101/
        │   ├── images/...              (any sub-folders)
        │   ├── train800.txt            'relative/path.jpg label' lines,
        │   ├── val200.txt              paths relative to the task folder
        │   ├── train800val200.txt
        │   └── test.txt
        ├── cifar/
        └── ...                         (19 task folders)

    Everything is checked when the dataset is built, before any training:
    the data root, the task and split names, the annotation file, every line
    of it, every label (``0 <= label < num_classes``) and that every listed
    image exists (``os.path.isfile``, cheap for 20k files). Each error names
    the path or value at fault and what was expected.

    Class names are ``'0'`` ... ``'<num_classes-1>'``; the class count of the
    task is :data:`~vapt_mm.datasets.VTAB1K_NUM_CLASSES` ``[task]`` and the
    model's head must use the same number.

    Args:
        data_root (str): Folder holding the 19 task folders.
        task (str): Task name, one of
            :data:`~vapt_mm.datasets.VTAB1K_TASKS` (``cifar``,
            ``caltech101``, ``dtd``, ``oxford_flowers102``,
            ``oxford_iiit_pet``, ``svhn``, ``sun397``, ``patch_camelyon``,
            ``eurosat``, ``resisc45``, ``diabetic_retinopathy``,
            ``clevr_count``, ``clevr_dist``, ``dmlab``, ``kitti``,
            ``dsprites_loc``, ``dsprites_ori``, ``smallnorb_azi``,
            ``smallnorb_ele``).
        split (str): ``'train800'``, ``'val200'``, ``'train800val200'`` or
            ``'test'``. Defaults to ``'train800val200'``.
        pipeline (Sequence): Processing pipeline. Defaults to ``()``.
        test_mode (bool): Passed to :class:`mmpretrain.datasets.BaseDataset`.
            Defaults to False.
        check_files (bool): Check that every listed image exists when the
            annotations are loaded. Defaults to True.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``metainfo``, ``classes``, ``indices``, ``lazy_init``, ...),
            except ``ann_file`` and ``data_prefix``, which follow from
            ``task`` and ``split``.

    Example:
        >>> from mmpretrain.registry import DATASETS
        >>> import vapt_mm  # noqa: registers VTAB1k
        >>> ds = DATASETS.build(dict(type='VTAB1k', data_root='data/vtab-1k',
        ...                          task='dtd', split='train800val200'))
        >>> len(ds), len(ds.metainfo['classes']), ds.group
        (1000, 47, 'Natural')
    """

    def __init__(self,
                 data_root: str,
                 task: str,
                 split: str = 'train800val200',
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 check_files: bool = True,
                 **kwargs) -> None:
        check_choice('VTAB-1k task', task, VTAB1K_TASKS)
        check_choice('VTAB-1k split', split, VTAB1K_SPLITS)
        for key in ('ann_file', 'data_prefix'):
            if key in kwargs:
                raise ConfigTypeError(
                    f'VTAB1k sets {key!r} itself from task and split; got '
                    f'{key}={kwargs[key]!r}. Use data_root, task and split '
                    f'instead ({docs_hint("config-values")}).')
        check_vtab1k_folders(data_root, task)

        self.task = task
        self.split = split
        self.check_files = check_files
        self.num_classes = VTAB1K_NUM_CLASSES[task]
        self.group = VTAB1K_TASK_GROUP[task]
        super().__init__(
            ann_file=osp.join(task, f'{split}.txt'),
            data_root=data_root,
            data_prefix=task,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)
        classes = self._metainfo.setdefault(
            'classes', tuple(str(i) for i in range(self.num_classes)))
        if len(classes) != self.num_classes:
            raise ConfigError(
                f'VTAB-1k task {task!r} has {self.num_classes} classes but '
                f'{len(classes)} class names were given (metainfo / '
                f'classes); expected {self.num_classes} '
                f'({docs_hint("class-count")}).')

    def load_data_list(self) -> List[dict]:
        """Parse ``<data_root>/<task>/<split>.txt`` and validate it.

        Returns:
            list[dict]: ``dict(img_path=..., gt_label=...)`` per line.

        Raises:
            MissingFileError: If the annotation file or listed images are
                missing (a ``FileNotFoundError``).
            DataError: If a line does not parse, the file lists nothing or
                a label is out of range (a ``ValueError``).
        """
        entries = read_vtab1k_split(self.ann_file, self.task, self.split)

        data_list = [
            dict(
                img_path=osp.join(self.img_prefix, e.path),
                gt_label=e.label) for e in entries
        ]
        if self.check_files:
            missing = find_missing_files(d['img_path'] for d in data_list)
            if missing:
                raise MissingFileError(
                    missing_files_message(missing, len(data_list),
                                          self.ann_file, self.img_prefix))
        print_log(
            f'VTAB-1k {self.task}/{self.split}: {len(data_list)} images, '
            f'{self.num_classes} classes', logger='current')
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Task: \t{self.task} ({self.group})',
            f'Split: \t{self.split}',
            f'Annotation file: \t{self.ann_file}',
            f'Root of dataset: \t{self.data_root}',
        ]

