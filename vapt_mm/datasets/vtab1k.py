"""The VTAB-1k benchmark as an mmpretrain dataset."""
import os.path as osp
from typing import List, Sequence

from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .annotation_files import (check_choice, check_dir, check_file,
                               find_missing_files, label_range_errors,
                               missing_files_message, parse_vtab1k_list)
from .task_info import (DOCS_HINT, VTAB1K_NUM_CLASSES, VTAB1K_SPLITS,
                        VTAB1K_TASK_GROUP, VTAB1K_TASKS)


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
                raise TypeError(
                    f'VTAB1k sets {key!r} itself from task and split; got '
                    f'{key}={kwargs[key]!r}. Use data_root, task and split '
                    f'instead ({DOCS_HINT}).')
        check_dir(data_root, 'VTAB-1k data root',
                  f'the 19 task folders ({", ".join(VTAB1K_TASKS)})')
        task_dir = osp.join(data_root, task)
        check_dir(
            task_dir, f'VTAB-1k task folder of {task!r}',
            'the images and ' +
            ', '.join(f'{s}.txt' for s in VTAB1K_SPLITS))

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
            raise ValueError(
                f'VTAB-1k task {task!r} has {self.num_classes} classes but '
                f'{len(classes)} class names were given (metainfo / '
                f'classes); expected {self.num_classes} ({DOCS_HINT}).')

    def load_data_list(self) -> List[dict]:
        """Parse ``<data_root>/<task>/<split>.txt`` and validate it.

        Returns:
            list[dict]: ``dict(img_path=..., gt_label=...)`` per line.

        Raises:
            FileNotFoundError: If the annotation file or listed images are
                missing.
            ValueError: If a line does not parse or a label is out of range.
        """
        check_file(
            self.ann_file, f'VTAB-1k annotation file for split '
            f'{self.split!r} of task {self.task!r}',
            "'relative/path.ext label' lines")
        entries = parse_vtab1k_list(self.ann_file)
        errors = label_range_errors(entries, self.num_classes, self.ann_file)
        if errors:
            more = (f' ({len(errors) - 1} more labels are out of range)'
                    if len(errors) > 1 else '')
            raise ValueError(errors[0] + more)

        data_list = [
            dict(
                img_path=osp.join(self.img_prefix, e.path),
                gt_label=e.label) for e in entries
        ]
        if self.check_files:
            missing = find_missing_files(d['img_path'] for d in data_list)
            if missing:
                raise FileNotFoundError(
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

