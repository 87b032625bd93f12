"""Turn sweep summaries into the paper's results table (Markdown and CSV).

Each method is one sweep work dir (``tools/sweep.py --work-dir``), holding
``<task>/sweep_summary.json`` per task. Per task the table shows the mean and
standard deviation of the test top-1 over seeds; then the Natural /
Specialized / Structured group means, the plain mean of the VTAB-1k tasks,
the FGVC mean and the tuned parameter share, beside the published numbers of
:mod:`vapt_mm.protocol.published_results`.

A group (or the 19-task mean, or the FGVC mean) with tasks missing is not
hidden: its mean covers the tasks present and is marked
``(k of n tasks)``; the CSV has the counts in ``<column> tasks`` columns.
Only complete task summaries (all seeds scored) enter the means.

Example:
    >>> from vapt_mm.protocol.results_table import (load_method,
    ...                                                build_table)
    >>> table = build_table([load_method('work_dirs/sweep_vapt')])
    ...                                                # doctest: +SKIP
    >>> table.summary_rows[0].values['VTAB mean']      # doctest: +SKIP
    GroupMean(mean=72.1, present=19, expected=19)
"""
import contextlib
import csv
import glob
import io
import os
import os.path as osp
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence

import numpy as np

from vapt_mm.datasets.task_info import (FGVC_DATASETS, VTAB1K_GROUPS,
                                        VTAB1K_TASK_GROUP, VTAB1K_TASKS)
from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import ConfigError, DataError, MissingFileError
from .published_results import (PUBLISHED_PER_TASK_METHODS, PUBLISHED_SOURCE,
                                PUBLISHED_SUMMARY, PUBLISHED_SUMMARY_METHODS,
                                PUBLISHED_VTAB1K_PER_TASK, SUMMARY_COLUMNS)
from .summary import SUMMARY_FILE, read_summary

__all__ = [
    'TaskResult', 'MethodResults', 'GroupMean', 'SummaryRow', 'ResultsTable',
    'find_summaries', 'load_method', 'group_mean', 'build_table',
    'render_markdown', 'write_csvs', 'write_results'
]

#: FGVC data sets in table order.
FGVC_TASKS = tuple(FGVC_DATASETS)


class TaskResult(NamedTuple):
    """One task of one method.

    Args:
        task (str): Task name.
        benchmark (str): ``'vtab1k'`` or ``'fgvc'``.
        mean (float, optional): Mean test top-1 over the scored seeds.
        std (float, optional): Their standard deviation (``ddof=0``).
        num_seeds (int): Seeds scored.
        planned_seeds (int): Seeds planned.
        complete (bool): Every run of the task scored.
        trainable_percent (float, optional): Tuned parameter share (%).
        source (str): The summary file.
    """

    task: str
    benchmark: str
    mean: Optional[float]
    std: Optional[float]
    num_seeds: int
    planned_seeds: int
    complete: bool
    trainable_percent: Optional[float]
    source: str


class MethodResults(NamedTuple):
    """The task results of one sweep work dir.

    Args:
        label (str): Column label.
        work_dir (str): The sweep work dir.
        tasks (dict[str, TaskResult]): Per task.
    """

    label: str
    work_dir: str
    tasks: Dict[str, TaskResult]


class GroupMean(NamedTuple):
    """A mean over the complete tasks of a group.

    Args:
        mean (float, optional): The mean (None without any task).
        present (int): Tasks the mean covers.
        expected (int): Tasks of the group.
    """

    mean: Optional[float]
    present: int
    expected: int

    @property
    def complete(self) -> bool:
        """Whether every task of the group is present."""
        return self.present == self.expected


class SummaryRow(NamedTuple):
    """One row of the summary table.

    Args:
        label (str): Method label.
        published (bool): Whether the numbers are the published ones.
        values (dict[str, GroupMean]): Column of
            :data:`~vapt_mm.protocol.published_results.SUMMARY_COLUMNS` to its
            value (``expected == 0`` for published numbers).
    """

    label: str
    published: bool
    values: Dict[str, GroupMean]


class ResultsTable(NamedTuple):
    """Everything the writers need.

    Args:
        methods (list[MethodResults]): Reproduced methods.
        summary_rows (list[SummaryRow]): Reproduced then published rows.
    """

    methods: List[MethodResults]
    summary_rows: List[SummaryRow]


def find_summaries(work_dir: str) -> List[str]:
    """``sweep_summary.json`` files of a sweep work dir (or of a task dir).

    Args:
        work_dir (str): ``tools/sweep.py --work-dir`` or one task folder.

    Returns:
        list[str]: Paths, sorted.
    """
    if not osp.isdir(work_dir):
        raise MissingFileError(f'{work_dir} is not a directory; expected a '
                               'tools/sweep.py --work-dir.')
    paths = glob.glob(osp.join(work_dir, SUMMARY_FILE))
    paths += glob.glob(osp.join(work_dir, '*', SUMMARY_FILE))
    if not paths:
        raise MissingFileError(
            f'No {SUMMARY_FILE} in {work_dir} or its sub-folders; expected '
            f'the work dir of tools/sweep.py (<work-dir>/<task>/'
            f'{SUMMARY_FILE}).')
    return sorted(paths)


def _task_result(path: str, summary: dict) -> TaskResult:
    scores = [float(s) for s in summary['test_top1']]
    mean = std = None
    if scores:
        mean = float(np.mean(scores))
        std = float(np.std(scores, ddof=0))
    params = summary.get('params') or {}
    return TaskResult(
        task=summary['task'],
        benchmark=summary['benchmark'],
        mean=mean,
        std=std,
        num_seeds=len(scores),
        planned_seeds=len(summary.get('seeds', scores)),
        complete=bool(summary['complete']),
        trainable_percent=params.get('trainable_percent'),
        source=path)


def load_method(work_dir: str, label: Optional[str] = None) -> MethodResults:
    """Read every task summary of a sweep work dir.

    Args:
        work_dir (str): The sweep work dir.
        label (str, optional): Column label; defaults to the folder name.

    Returns:
        MethodResults: The results.

    Raises:
        ValueError: If two summaries in the folder describe the same task
            or a task is unknown.

    Example:
        >>> method = load_method('work_dirs/sweep_vapt')  # doctest: +SKIP
        >>> method.label, method.tasks['dtd'].mean  # doctest: +SKIP
        ('sweep_vapt', 71.2)
    """
    tasks: Dict[str, TaskResult] = {}
    known = {'vtab1k': VTAB1K_TASKS, 'fgvc': FGVC_TASKS}
    for path in find_summaries(work_dir):
        result = _task_result(path, read_summary(path))
        if result.task not in known.get(result.benchmark, ()):
            raise DataError(
                f'{path}: unknown task {result.task!r} of benchmark '
                f'{result.benchmark!r}; expected one of '
                f'{ {k: list(v) for k, v in known.items()} }.')
        if result.task in tasks:
            raise DataError(
                f'{work_dir} holds two summaries of task {result.task!r} '
                f'({tasks[result.task].source} and {path}); give one sweep '
                'work dir per method.')
        tasks[result.task] = result
    name = label or osp.basename(osp.normpath(work_dir))
    return MethodResults(name, work_dir, tasks)


def group_mean(method: MethodResults, tasks: Sequence[str]) -> GroupMean:
    """Plain mean over the complete task results among ``tasks``.

    Args:
        method (MethodResults): The method.
        tasks (Sequence[str]): The group's tasks.

    Returns:
        GroupMean: The mean and how many tasks it covers.

    Example:
        >>> r = TaskResult('dtd', 'vtab1k', 70.0, 0.0, 5, 5, True, None, '')
        >>> group_mean(MethodResults('m', '.', {'dtd': r}), ['dtd', 'cifar'])
        GroupMean(mean=70.0, present=1, expected=2)
    """
    values = [
        method.tasks[t].mean for t in tasks
        if t in method.tasks and method.tasks[t].complete
    ]
    mean = float(np.mean(values)) if values else None
    return GroupMean(mean, len(values), len(tasks))


def _tuned_percent(method: MethodResults) -> GroupMean:
    shares = [
        r.trainable_percent for r in method.tasks.values()
        if r.complete and r.trainable_percent is not None
    ]
    complete = [r for r in method.tasks.values() if r.complete]
    mean = float(np.mean(shares)) if shares else None
    return GroupMean(mean, len(shares), len(complete))


def build_table(methods: Sequence[MethodResults]) -> ResultsTable:
    """Compute the summary rows of reproduced and published methods.

    Args:
        methods (Sequence[MethodResults]): Reproduced methods, one column
            each.

    Returns:
        ResultsTable: The table.
    """
    labels = [m.label for m in methods]
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise ConfigError(f'Two work dirs have the label(s) {duplicates}; '
                          'give distinct --labels.')
    rows = []
    for method in methods:
        values = {
            'tuned %': _tuned_percent(method),
            'FGVC': group_mean(method, FGVC_TASKS),
        }
        for group, tasks in VTAB1K_GROUPS.items():
            values[group] = group_mean(method, tasks)
        values['VTAB mean'] = group_mean(method, VTAB1K_TASKS)
        rows.append(SummaryRow(method.label, False, values))
    for name in PUBLISHED_SUMMARY_METHODS:
        rows.append(
            SummaryRow(
                f'{name} (published)', True, {
                    col: GroupMean(PUBLISHED_SUMMARY[name][col], 0, 0)
                    for col in SUMMARY_COLUMNS
                }))
    return ResultsTable(list(methods), rows)


def _fmt(value: Optional[float], digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def _fmt_task(result: Optional[TaskResult]) -> str:
    if result is None or result.mean is None:
        return '–'
    text = f'{result.mean:.2f} ± {result.std:.2f}'
    if not result.complete:
        text += (f' (incomplete: {result.num_seeds} of '
                 f'{result.planned_seeds} seeds)')
    return text


def _fmt_group(value: GroupMean, published: bool, column: str) -> str:
    digits = 2
    if column == 'tuned %' and value.mean is not None and value.mean < 0.1:
        digits = 4
    text = _fmt(value.mean, digits)
    if published or column == 'tuned %':
        return text
    if not value.complete:
        text += f' ({value.present} of {value.expected} tasks)'
    return text


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def render_markdown(table: ResultsTable) -> str:
    """The table as Markdown: VTAB-1k per task, FGVC per data set (if any
    results), and the summary (group means).

    Args:
        table (ResultsTable): Output of :func:`build_table`.

    Returns:
        str: Markdown text.
    """
    labels = [m.label for m in table.methods]
    published = [f'{m} (published)' for m in PUBLISHED_PER_TASK_METHODS]
    parts = [
        '# VTAB-1k / FGVC results', '',
        'Test top-1 accuracy (%) per task: mean ± std over seeds '
        '(population std, ddof=0). Published: ' + PUBLISHED_SOURCE + '.', '',
        '## VTAB-1k per task', ''
    ]
    rows = []
    for task in VTAB1K_TASKS:
        row = [task, VTAB1K_TASK_GROUP[task]]
        row += [_fmt_task(m.tasks.get(task)) for m in table.methods]
        row += [
            _fmt(PUBLISHED_VTAB1K_PER_TASK[name][task], 1)
            for name in PUBLISHED_PER_TASK_METHODS
        ]
        rows.append(row)
    parts.append(_md_table(['task', 'group', *labels, *published], rows))
    if any(t in m.tasks for m in table.methods for t in FGVC_TASKS):
        parts += ['', '## FGVC per data set', '']
        rows = [[task, *[_fmt_task(m.tasks.get(task))
                         for m in table.methods]] for task in FGVC_TASKS]
        parts.append(_md_table(['data set', *labels], rows))
    parts += ['', '## Summary', '']
    rows = [[row.label, *[
        _fmt_group(row.values[col], row.published, col)
        for col in SUMMARY_COLUMNS
    ]] for row in table.summary_rows]
    parts.append(_md_table(['method', *SUMMARY_COLUMNS], rows))
    parts += [
        '',
        '* Natural / Specialized / Structured: plain mean of the group\'s '
        'tasks; VTAB mean: plain mean of the 19 tasks; FGVC: plain mean of '
        'the 5 data sets. Only tasks whose every seed was scored count.',
        '* **(k of n tasks)**: the group is incomplete; the number is the '
        'mean of the k tasks present only and is not comparable with the '
        'published mean over all n.',
        '* tuned %: trainable / total parameters of the built model (prompt '
        'modules and head over all parameters), averaged over the tasks '
        'present; the published share may count differently.',
    ]
    incomplete = [(m.label, r.task) for m in table.methods
                  for r in m.tasks.values() if not r.complete]
    if incomplete:
        parts.append('* Incomplete task sweeps (left out of the means): '
                     + ', '.join(f'{label}/{task}'
                                 for label, task in incomplete) + '.')
    return '\n'.join(parts) + '\n'


@contextlib.contextmanager
def _atomic_csv(path: str) -> Iterator:
    """A ``csv.writer`` whose rows reach ``path`` atomically on success."""
    buffer = io.StringIO(newline='')
    yield csv.writer(buffer)
    with atomic_write(path, 'wb') as f:
        f.write(buffer.getvalue().encode('utf-8'))


def write_csvs(table: ResultsTable, out_dir: str) -> Dict[str, str]:
    """Write ``results_summary.csv`` and ``results_per_task.csv``.

    ``results_summary.csv``: one row per method (reproduced, then
    published) with the columns of the paper's summary table, and for
    reproduced rows a ``<column> tasks`` count (``k/n``) per mean.

    ``results_per_task.csv``: one row per task (VTAB-1k, then FGVC) with
    ``<label> mean``, ``<label> std``, ``<label> seeds`` per reproduced
    method and the published per-task numbers.

    Args:
        table (ResultsTable): Output of :func:`build_table`.
        out_dir (str): Output folder.

    Returns:
        dict[str, str]: ``'summary'`` and ``'per_task'`` paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    summary_path = osp.join(out_dir, 'results_summary.csv')
    counted = [c for c in SUMMARY_COLUMNS if c != 'tuned %']
    with _atomic_csv(summary_path) as writer:
        writer.writerow(['method', 'source', *SUMMARY_COLUMNS,
                         *[f'{c} tasks' for c in counted]])
        for row in table.summary_rows:
            values = [
                '' if row.values[c].mean is None else
                f'{row.values[c].mean:.6g}' for c in SUMMARY_COLUMNS
            ]
            counts = [
                '' if row.published else
                f'{row.values[c].present}/{row.values[c].expected}'
                for c in counted
            ]
            writer.writerow([
                row.label, 'published' if row.published else 'reproduced',
                *values, *counts
            ])

    per_task_path = osp.join(out_dir, 'results_per_task.csv')
    with _atomic_csv(per_task_path) as writer:
        header = ['benchmark', 'task', 'group']
        for m in table.methods:
            header += [f'{m.label} mean', f'{m.label} std',
                       f'{m.label} seeds', f'{m.label} complete']
        header += [f'{name} (published)'
                   for name in PUBLISHED_PER_TASK_METHODS]
        writer.writerow(header)
        for benchmark, tasks in (('vtab1k', VTAB1K_TASKS),
                                 ('fgvc', FGVC_TASKS)):
            for task in tasks:
                row = [benchmark, task,
                       VTAB1K_TASK_GROUP.get(task, 'FGVC')]
                for m in table.methods:
                    r = m.tasks.get(task)
                    if r is None or r.mean is None:
                        row += ['', '', '', '']
                    else:
                        row += [f'{r.mean:.6g}', f'{r.std:.6g}',
                                r.num_seeds, r.complete]
                row += [
                    PUBLISHED_VTAB1K_PER_TASK[name].get(task, '')
                    for name in PUBLISHED_PER_TASK_METHODS
                ]
                writer.writerow(row)
    return dict(summary=summary_path, per_task=per_task_path)


def write_results(work_dirs: Sequence[str],
                  out_dir: str,
                  labels: Optional[Sequence[str]] = None,
                  plot: bool = True) -> Dict[str, str]:
    """Read sweeps and write ``results_table.md``, the CSVs and the plot.

    Args:
        work_dirs (Sequence[str]): Sweep work dirs, one per method.
        out_dir (str): Output folder.
        labels (Sequence[str], optional): Column labels, one per work dir;
            defaults to the folder names.
        plot (bool): Also write ``results_per_task.png``. Defaults to True.

    Returns:
        dict[str, str]: Kind (``markdown``, ``summary``, ``per_task``,
        ``plot``) to path.

    Example:
        >>> write_results(['work_dirs/sweep_vapt'], 'work_dirs/results',
        ...               labels=['VAPT'])  # doctest: +SKIP
        {'markdown': 'work_dirs/results/results_table.md', ...}
    """
    if labels is not None and len(labels) != len(work_dirs):
        raise ConfigError(f'{len(labels)} labels for {len(work_dirs)} work '
                          'dirs; give one label per work dir.')
    methods = [
        load_method(d, labels[i] if labels else None)
        for i, d in enumerate(work_dirs)
    ]
    table = build_table(methods)
    os.makedirs(out_dir, exist_ok=True)
    written = dict(markdown=osp.join(out_dir, 'results_table.md'))
    with atomic_write(written['markdown'], 'w') as f:
        f.write(render_markdown(table))
    written.update(write_csvs(table, out_dir))
    if plot:
        from .results_plot import plot_per_task
        written['plot'] = plot_per_task(
            table.methods, osp.join(out_dir, 'results_per_task.png'))
    return written
