"""Bar plot of reproduced per-task accuracy beside the published numbers.

Rendered with matplotlib's Agg canvas directly (no pyplot, no global
backend switch), so it works on headless machines and inside other
programs.

Example:
    >>> from vapt_mm.protocol.results_plot import plot_per_task
    >>> plot_per_task(methods, 'results_per_task.png')  # doctest: +SKIP
    'results_per_task.png'
"""
from typing import Sequence

import numpy as np

from vapt_mm.datasets.task_info import FGVC_DATASETS, VTAB1K_TASKS
from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import DataError, MissingPackageError
from .published_results import (PUBLISHED_PER_TASK_METHODS,
                                PUBLISHED_VTAB1K_PER_TASK)

__all__ = ['plot_per_task']


def plot_per_task(methods: Sequence, path: str) -> str:
    """Grouped bars per task: each reproduced method (mean, std as error
    bar) and the published VPT-deep / VPT-shallow / Full numbers.

    Tasks shown: those any reproduced method has a score for, VTAB-1k order
    first, then FGVC.

    Args:
        methods (Sequence[MethodResults]): Reproduced methods.
        path (str): Output PNG file.

    Returns:
        str: ``path``.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If no method has any task score.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise MissingPackageError(
            'The results plot needs matplotlib (requirements/optional.txt): '
            'pip install matplotlib, or pass --no-plot.') from err

    order = list(VTAB1K_TASKS) + list(FGVC_DATASETS)
    tasks = [
        t for t in order if any(
            t in m.tasks and m.tasks[t].mean is not None for m in methods)
    ]
    if not tasks:
        raise DataError('No task has a test score to plot.')
    series = []  # (label, values, errors, hatch)
    for m in methods:
        values = [m.tasks[t].mean if t in m.tasks and
                  m.tasks[t].mean is not None else np.nan for t in tasks]
        errors = [m.tasks[t].std if t in m.tasks and
                  m.tasks[t].std is not None else 0.0 for t in tasks]
        series.append((m.label, values, errors, None))
    for name in PUBLISHED_PER_TASK_METHODS:
        values = [PUBLISHED_VTAB1K_PER_TASK[name].get(t, np.nan)
                  for t in tasks]
        series.append((f'{name} (published)', values, None, '//'))

    width = 0.8 / len(series)
    x = np.arange(len(tasks))
    fig = Figure(figsize=(max(6.0, 0.9 * len(tasks) + 2), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, values, errors, hatch) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width,
               yerr=errors, capsize=2 if errors else 0, label=label,
               hatch=hatch, alpha=0.6 if hatch else 1.0)
    ax.set_xticks(x)
    ax.set_xticklabels(tasks, rotation=45, ha='right')
    ax.set_ylabel('test top-1 (%)')
    ax.set_ylim(0, 100)
    ax.legend(
        fontsize='small',
        ncol=min(len(series), 4),
        loc='lower center',
        bbox_to_anchor=(0.5, 1.08))
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=100, bbox_inches='tight')
    return path
