"""Facts about the VTAB-1k and FGVC tasks: names, class counts, groups.

Everything here is plain data, shared by the datasets
(:class:`~vapt_mm.datasets.VTAB1k`, :class:`~vapt_mm.datasets.FGVC`), the
integrity checker and the result-table tools.

Example:
    >>> from vapt_mm.datasets import VTAB1K_NUM_CLASSES, VTAB1K_TASK_GROUP
    >>> VTAB1K_NUM_CLASSES['dtd'], VTAB1K_TASK_GROUP['dtd']
    (47, 'Natural')
"""
from typing import Dict, NamedTuple, Tuple

from ..utils.user_errors import errors_doc

#: Appended to every data error so the user knows where the layout is written.
DOCS_HINT = 'see docs/datasets.md'


def docs_hint(section: str) -> str:
    """:data:`DOCS_HINT` plus the section of ``docs/errors.md`` that
    explains one kind of data error.

    Args:
        section (str): The anchor in ``docs/errors.md``, e.g. ``'data-root'``.

    Returns:
        str: e.g. ``'see docs/datasets.md and docs/errors.md#data-root'``.

    Example:
        >>> docs_hint('label-range')
        'see docs/datasets.md and docs/errors.md#label-range'
    """
    return f'{DOCS_HINT} and {errors_doc(section)}'

#: The 19 VTAB-1k tasks in the order of the VTAB paper and of result tables.
#: The names are the folder names of the common ``vtab-1k`` release.
VTAB1K_TASKS: Tuple[str, ...] = (
    # Natural
    'cifar',
    'caltech101',
    'dtd',
    'oxford_flowers102',
    'oxford_iiit_pet',
    'svhn',
    'sun397',
    # Specialized
    'patch_camelyon',
    'eurosat',
    'resisc45',
    'diabetic_retinopathy',
    # Structured
    'clevr_count',
    'clevr_dist',
    'dmlab',
    'kitti',
    'dsprites_loc',
    'dsprites_ori',
    'smallnorb_azi',
    'smallnorb_ele',
)

#: Number of classes of each VTAB-1k task (in VTAB order).
VTAB1K_NUM_CLASSES: Dict[str, int] = {
    'cifar': 100,
    'caltech101': 102,
    'dtd': 47,
    'oxford_flowers102': 102,
    'oxford_iiit_pet': 37,
    'svhn': 10,
    'sun397': 397,
    'patch_camelyon': 2,
    'eurosat': 10,
    'resisc45': 45,
    'diabetic_retinopathy': 5,
    'clevr_count': 8,
    'clevr_dist': 6,
    'dmlab': 6,
    'kitti': 4,
    'dsprites_loc': 16,
    'dsprites_ori': 16,
    'smallnorb_azi': 18,
    'smallnorb_ele': 9,
}

#: The three VTAB-1k groups, each with its tasks in VTAB order. Group means
#: in result tables are plain means over these tasks.
VTAB1K_GROUPS: Dict[str, Tuple[str, ...]] = {
    'Natural': VTAB1K_TASKS[0:7],
    'Specialized': VTAB1K_TASKS[7:11],
    'Structured': VTAB1K_TASKS[11:19],
}

#: Group of each VTAB-1k task: ``'Natural'``, ``'Specialized'`` or
#: ``'Structured'``.
VTAB1K_TASK_GROUP: Dict[str, str] = {
    task: group
    for group, tasks in VTAB1K_GROUPS.items() for task in tasks
}

#: Annotation files of a task folder (``<split>.txt``).
VTAB1K_SPLITS: Tuple[str, ...] = ('train800', 'val200', 'train800val200',
                                  'test')

#: Number of images every task has in its fixed-size splits. The size of
#: ``test`` differs per task and is whatever ``test.txt`` lists.
VTAB1K_SPLIT_SIZES: Dict[str, int] = {
    'train800': 800,
    'val200': 200,
    'train800val200': 1000,
}


class FGVCSpec(NamedTuple):
    """Where one FGVC data set lives and how many classes it has.

    Args:
        full_name (str): Human readable name.
        folder (str): Folder of the data set under the FGVC data root; it
            holds ``train.json``, ``val.json`` and ``test.json``.
        image_dir (str): Folder, relative to ``folder``, that the image paths
            in the JSON files are relative to (``''``: ``folder`` itself).
        num_classes (int): Number of classes.
    """

    full_name: str
    folder: str
    image_dir: str
    num_classes: int


#: The five FGVC data sets of the VPT protocol, by the name configs use.
FGVC_DATASETS: Dict[str, FGVCSpec] = {
    'cub': FGVCSpec('CUB-200-2011', 'CUB_200_2011', 'images', 200),
    'nabirds': FGVCSpec('NABirds', 'nabirds', 'images', 555),
    'oxfordflower': FGVCSpec('Oxford Flowers', 'OxfordFlower', '', 102),
    'stanforddogs': FGVCSpec('Stanford Dogs', 'StanfordDogs', 'Images', 120),
    'stanfordcars': FGVCSpec('Stanford Cars', 'StanfordCars', '', 196),
}

#: Number of classes of each FGVC data set.
FGVC_NUM_CLASSES: Dict[str, int] = {
    name: spec.num_classes
    for name, spec in FGVC_DATASETS.items()
}

#: The split files the VPT authors published for each FGVC data set.
FGVC_SPLIT_FILES: Tuple[str, ...] = ('train', 'val', 'test')

#: Splits :class:`~vapt_mm.datasets.FGVC` accepts; ``trainval`` is the union
#: of ``train.json`` and ``val.json`` (the final training set of the
#: protocol).
FGVC_SPLITS: Tuple[str, ...] = ('train', 'val', 'trainval', 'test')

#: Which split files make up each split.
FGVC_SPLIT_SOURCES: Dict[str, Tuple[str, ...]] = {
    'train': ('train', ),
    'val': ('val', ),
    'trainval': ('train', 'val'),
    'test': ('test', ),
}
