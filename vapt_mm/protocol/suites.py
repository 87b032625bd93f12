"""The evaluation suites a sweep runs on (VTAB-1k and FGVC).

For every supported dataset type: the dataset key that names the task, the
task list and class counts (taken from :mod:`vapt_mm.datasets`), and the
splits of the two phases of the protocol.

Example:
    >>> from vapt_mm.protocol.suites import get_suite, expand_tasks
    >>> spec = get_suite('VTAB1k')
    >>> spec.grid_splits, spec.final_splits
    (('train800', 'val200'), ('train800val200', 'test'))
    >>> expand_tasks(spec, ['specialized'])
    ['patch_camelyon', 'eurosat', 'resisc45', 'diabetic_retinopathy']
"""
from typing import Dict, List, NamedTuple, Sequence, Tuple

from vapt_mm.datasets.task_info import (FGVC_DATASETS, FGVC_NUM_CLASSES,
                                        VTAB1K_GROUPS, VTAB1K_NUM_CLASSES,
                                        VTAB1K_TASK_GROUP, VTAB1K_TASKS)
from vapt_mm.utils.user_errors import ConfigError

from vapt_mm.compat.moved_modules import moved_attribute_getter

__all__ = ['SuiteSpec', 'SUITES', 'get_suite', 'expand_tasks']


class SuiteSpec(NamedTuple):
    """How one dataset type takes part in a sweep.

    Args:
        name (str): Suite name written into summaries (``'vtab1k'``,
            ``'fgvc'``).
        dataset_type (str): The registered dataset class name.
        task_key (str): Dataset argument that selects the task.
        tasks (tuple[str, ...]): All task names, in table order.
        num_classes (dict[str, int]): Class count per task.
        task_group (dict[str, str]): Group per task (empty if none).
        groups (dict[str, tuple[str, ...]]): Tasks per group (empty if none).
        grid_splits (tuple[str, str]): (train, eval) splits of the grid
            search.
        final_splits (tuple[str, str]): (train, eval) splits of the seed
            runs.
    """

    name: str
    dataset_type: str
    task_key: str
    tasks: Tuple[str, ...]
    num_classes: Dict[str, int]
    task_group: Dict[str, str]
    groups: Dict[str, Tuple[str, ...]]
    grid_splits: Tuple[str, str]
    final_splits: Tuple[str, str]


#: Supported dataset types.
SUITES: Dict[str, SuiteSpec] = {
    'VTAB1k':
    SuiteSpec(
        name='vtab1k',
        dataset_type='VTAB1k',
        task_key='task',
        tasks=VTAB1K_TASKS,
        num_classes=VTAB1K_NUM_CLASSES,
        task_group=VTAB1K_TASK_GROUP,
        groups=VTAB1K_GROUPS,
        grid_splits=('train800', 'val200'),
        final_splits=('train800val200', 'test')),
    'FGVC':
    SuiteSpec(
        name='fgvc',
        dataset_type='FGVC',
        task_key='dataset',
        tasks=tuple(FGVC_DATASETS),
        num_classes=FGVC_NUM_CLASSES,
        task_group={name: 'FGVC'
                    for name in FGVC_DATASETS},
        groups={'FGVC': tuple(FGVC_DATASETS)},
        grid_splits=('train', 'val'),
        final_splits=('trainval', 'test')),
}


def get_suite(dataset_type: str) -> SuiteSpec:
    """The :class:`SuiteSpec` of a dataset type.

    Args:
        dataset_type (str): ``train_dataloader.dataset.type`` of a config.

    Returns:
        SuiteSpec: Its description.

    Example:
        >>> get_suite('FGVC').task_key
        'dataset'
    """
    if dataset_type not in SUITES:
        raise ConfigError(
            f'The sweep supports the dataset types {sorted(SUITES)}; '
            f'the config has train_dataloader.dataset.type='
            f'{dataset_type!r}.')
    return SUITES[dataset_type]


def expand_tasks(spec: SuiteSpec, names: Sequence[str]) -> List[str]:
    """Turn task names and group aliases into a task list.

    ``all`` stands for every task of the suite and a group name (any
    case: ``natural``, ``Specialized``, ...) for the tasks of that group.
    Order follows the suite's task order; duplicates are dropped.

    Args:
        spec (SuiteSpec): The suite.
        names (Sequence[str]): Task names and aliases.

    Returns:
        list[str]: Task names.

    Example:
        >>> expand_tasks(get_suite('VTAB1k'), ['dtd', 'cifar'])
        ['cifar', 'dtd']
    """
    groups = {g.lower(): tasks for g, tasks in spec.groups.items()}
    wanted = set()
    for name in names:
        if name.lower() == 'all':
            wanted.update(spec.tasks)
        elif name.lower() in groups:
            wanted.update(groups[name.lower()])
        elif name in spec.tasks:
            wanted.add(name)
        else:
            raise ConfigError(
                f'--tasks: unknown {spec.dataset_type} task {name!r}; '
                f'expected one of {list(spec.tasks)}, a group '
                f'({", ".join(spec.groups)}) or "all".')
    return [t for t in spec.tasks if t in wanted]


#: Names before "benchmark" came to mean only the speed harness.
_RENAMED = {
    'BenchmarkSpec': f'{__name__}.SuiteSpec',
    'BENCHMARKS': f'{__name__}.SUITES',
    'get_benchmark': f'{__name__}.get_suite',
}

__getattr__ = moved_attribute_getter(__name__, _RENAMED)
