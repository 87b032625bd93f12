"""Published VTAB-1k / FGVC numbers of VPT and VAPT, as data.

The numbers are those reported in the VPT and VAPT papers: ViT-B/16
supervised on ImageNet-21k, test top-1 accuracy in percent, mean over the
five seeds of the protocol. Per-task numbers exist for VPT-deep, VPT-shallow
and full fine-tuning; group means for full fine-tuning, VPT-deep and VAPT.
The result-table tool prints them beside a reproduction.

Task names are those of :data:`vapt_mm.datasets.VTAB1K_TASKS` (the folder
names of the ``vtab-1k`` release), group names those of
:data:`vapt_mm.datasets.VTAB1K_GROUPS`.

Example:
    >>> from vapt_mm.protocol.published_results import (
    ...     PUBLISHED_VTAB1K_PER_TASK, PUBLISHED_SUMMARY)
    >>> PUBLISHED_VTAB1K_PER_TASK['VPT-deep']['eurosat']
    96.1
    >>> PUBLISHED_SUMMARY['VAPT']['VTAB mean']
    72.91
"""
from typing import Dict, Sequence

from vapt_mm.datasets.task_info import VTAB1K_TASKS

__all__ = [
    'PUBLISHED_VTAB1K_PER_TASK', 'PUBLISHED_SUMMARY',
    'PUBLISHED_PER_TASK_METHODS', 'PUBLISHED_SUMMARY_METHODS',
    'SUMMARY_COLUMNS', 'PUBLISHED_SOURCE'
]

#: Where the numbers come from.
PUBLISHED_SOURCE = ('VPT (Jia et al., ECCV 2022, arXiv 2203.12119) and '
                    'VAPT (Le et al., ICLR 2026, arXiv 2501.18936); '
                    'ViT-B/16 ImageNet-21k, test top-1 %')


def _per_task(values: Sequence[float]) -> Dict[str, float]:
    """Map 19 numbers in VTAB order to the task names."""
    if len(values) != len(VTAB1K_TASKS):
        raise ValueError(f'published per-task list has {len(values)} '
                         f'numbers, expected {len(VTAB1K_TASKS)} (one per '
                         'VTAB-1k task in VTAB order).')
    return dict(zip(VTAB1K_TASKS, values))


#: Methods with published per-task VTAB-1k numbers, in table order.
PUBLISHED_PER_TASK_METHODS = ('VPT-deep', 'VPT-shallow', 'Full')

#: Method -> task -> published test top-1 (%).
PUBLISHED_VTAB1K_PER_TASK: Dict[str, Dict[str, float]] = {
    'VPT-deep': _per_task([
        78.8, 90.8, 65.8, 98.0, 88.3, 78.1, 49.6,
        81.8, 96.1, 83.4, 68.4,
        68.5, 60.0, 46.5, 72.8, 73.6, 47.9, 32.9, 37.8,
    ]),
    'VPT-shallow': _per_task([
        77.7, 86.9, 62.6, 97.5, 87.3, 74.5, 51.2,
        78.2, 92.0, 75.6, 72.9,
        50.5, 58.6, 40.5, 67.1, 68.7, 36.1, 20.2, 34.1,
    ]),
    'Full': _per_task([
        68.9, 87.7, 64.3, 97.2, 86.9, 87.4, 38.8,
        79.7, 95.7, 84.2, 73.9,
        56.3, 58.6, 41.7, 65.5, 57.5, 46.7, 25.7, 29.1,
    ]),
}

#: Columns of :data:`PUBLISHED_SUMMARY`: tuned parameter share (%), the
#: FGVC mean (5 data sets), the three VTAB-1k group means and the plain
#: mean of the 19 VTAB-1k tasks.
SUMMARY_COLUMNS = ('tuned %', 'FGVC', 'Natural', 'Specialized', 'Structured',
                   'VTAB mean')

#: Methods with published group means, in table order.
PUBLISHED_SUMMARY_METHODS = ('VPT-deep', 'VAPT', 'Full')

#: Method -> column of :data:`SUMMARY_COLUMNS` -> published number.
PUBLISHED_SUMMARY: Dict[str, Dict[str, float]] = {
    'Full': {
        'tuned %': 100.0,
        'FGVC': 88.54,
        'Natural': 75.88,
        'Specialized': 83.36,
        'Structured': 47.64,
        'VTAB mean': 65.57,
    },
    'VPT-deep': {
        'tuned %': 0.73,
        'FGVC': 89.11,
        'Natural': 78.48,
        'Specialized': 82.43,
        'Structured': 54.98,
        'VTAB mean': 69.43,
    },
    'VAPT': {
        'tuned %': 0.36,
        'FGVC': 89.58,
        'Natural': 81.43,
        'Specialized': 85.13,
        'Structured': 59.34,
        'VTAB mean': 72.91,
    },
}
