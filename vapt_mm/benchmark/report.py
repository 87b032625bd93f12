"""Benchmark rows: medians, ratios to the baseline, Markdown, JSON."""
import json
import statistics
from typing import Dict, List, Optional, Sequence

from ..utils.atomic_io import atomic_write
from ..utils.parameter_count import format_percent
from .benchmark_case import BenchmarkCase

__all__ = ['summarize_rows', 'format_markdown_table', 'write_json']

MIB = 2**20


def summarize_rows(cases: Sequence[BenchmarkCase],
                   times: Dict[str, Dict[str, List[float]]],
                   memory: Optional[Dict[str, Dict[str, int]]],
                   baseline: str) -> List[dict]:
    """One result row per case.

    Step times are medians over the repeats; images/s is the batch size
    divided by that median. The ratios divide a row's median step time by
    the ``baseline`` row's (both measured interleaved, in the same
    repeats), so they agree with the images/s columns when the batch sizes
    are equal.

    Args:
        cases (Sequence[BenchmarkCase]): The measured cases.
        times (dict): From :func:`time_interleaved`.
        memory (dict, optional): From :func:`measure_cases_memory`; None
            leaves the peak memory fields None.
        baseline (str): Label of the row the ratios refer to.

    Returns:
        list[dict]: Rows with ``label``, ``params_trained``,
        ``params_total``, ``trainable_percent``, ``param_mib``,
        ``batch_size``, ``infer_batch_size``, ``img_size``,
        ``train_step_s``, ``infer_step_s``, ``train_img_s``,
        ``infer_img_s``, ``train_times_s``, ``infer_times_s``,
        ``train_peak_mib``, ``infer_peak_mib``, ``train_vs_baseline``,
        ``infer_vs_baseline`` and the case's ``info`` fields.

    Example:
        >>> from vapt_mm.benchmark import (build_method_cases,
        ...                                      parse_methods)
        >>> cases = build_method_cases(parse_methods(['bare', 'linear']),
        ...                            'tiny', batch_size=2)
        >>> times = {'bare': dict(train=[0.1, 0.3, 0.2], infer=[0.1] * 3),
        ...          'linear': dict(train=[0.1] * 3, infer=[0.2] * 3)}
        >>> rows = summarize_rows(cases, times, None, baseline='bare')
        >>> rows[1]['train_vs_baseline'], rows[1]['infer_img_s']
        (0.5, 10.0)
    """
    labels = [case.label for case in cases]
    if baseline not in labels:
        raise ValueError(
            f'Baseline row {baseline!r} is not among the benchmark rows '
            f'{labels}.')
    reference_train = statistics.median(times[baseline]['train'])
    reference_infer = statistics.median(times[baseline]['infer'])
    rows = []
    for case in cases:
        measured = times[case.label]
        train_s = statistics.median(measured['train'])
        infer_s = statistics.median(measured['infer'])
        peak = (memory or {}).get(case.label)
        row = dict(
            label=case.label,
            bare=case.bare,
            params_trained=case.num_trainable,
            params_total=case.num_total,
            trainable_percent=100.0 * case.num_trainable / case.num_total
            if case.num_total else 0.0,
            param_mib=case.param_bytes / MIB,
            batch_size=case.batch_size,
            infer_batch_size=case.infer_batch_size,
            img_size=list(case.img_size),
            train_step_s=train_s,
            infer_step_s=infer_s,
            train_img_s=case.batch_size / train_s,
            infer_img_s=case.infer_batch_size / infer_s,
            train_times_s=list(measured['train']),
            infer_times_s=list(measured['infer']),
            train_peak_mib=peak['train'] / MIB if peak else None,
            infer_peak_mib=peak['infer'] / MIB if peak else None,
            train_vs_baseline=train_s / reference_train,
            infer_vs_baseline=infer_s / reference_infer)
        row.update(case.info)
        rows.append(row)
    return rows


def _rate(value: float) -> str:
    return f'{value:,.1f}' if value >= 10 else f'{value:.3g}'


def _mib(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:,.1f}'


def format_markdown_table(rows: Sequence[dict], baseline: str) -> str:
    """The rows as a Markdown table.

    Args:
        rows (Sequence[dict]): From :func:`summarize_rows`.
        baseline (str): The baseline label, named in the ratio headers.

    Returns:
        str: The table, one line per row, without a trailing newline.

    Example:
        >>> print(format_markdown_table(rows, 'bare'))  # rows as above
        | method | params trained | train img/s | infer img/s | ...
        |---|---:|---:|---:|---:|---:|---:|---:|
        | bare | 0 (grad to input) | 10.0 | 20.0 | - | - | 1.00x | 1.00x |
        | linear | 650 (0.80%) | 20.0 | 10.0 | - | - | 0.50x | 2.00x |
    """
    header = ('method', 'params trained', 'train img/s', 'infer img/s',
              'train peak MiB', 'infer peak MiB',
              f'train step / {baseline}', f'infer step / {baseline}')
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
    for row in rows:
        trained = f"{row['params_trained']:,}"
        if row['bare']:
            trained += ' (grad to input)'
        else:
            trained += f" ({format_percent(row['trainable_percent'])})"
        cells = (row['label'], trained, _rate(row['train_img_s']),
                 _rate(row['infer_img_s']), _mib(row['train_peak_mib']),
                 _mib(row['infer_peak_mib']),
                 f"{row['train_vs_baseline']:.2f}x",
                 f"{row['infer_vs_baseline']:.2f}x")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_json(result: dict, path: str) -> None:
    """Write the benchmark result to ``path`` (parent folders created).

    Args:
        result (dict): JSON-serialisable result.
        path (str): Output file.

    Example:
        >>> write_json(dict(rows=[]), 'work_dirs/benchmark/empty.json')
    """
    with atomic_write(path, 'w') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
