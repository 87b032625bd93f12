"""The per-task ``sweep_summary.json``: grid scores, best pair, seed scores.

Example:
    >>> from vapt_mm.protocol.summary import seed_statistics
    >>> seed_statistics([80.0, 82.0])
    (81.0, 1.0)
"""
import json
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import DataError
from .hyperparameters import REFERENCE_BATCH_SIZE, TIE_BREAK_RULE
from .runs import RunSpec

__all__ = [
    'SUMMARY_FILE', 'SUMMARY_VERSION', 'seed_statistics', 'count_model',
    'build_summary', 'write_summary', 'read_summary'
]

#: File name of the per-task summary, in ``<work_dir>/<task>/``.
SUMMARY_FILE = 'sweep_summary.json'
#: Format version written into summaries.
SUMMARY_VERSION = 1


def seed_statistics(scores: Sequence[float]) -> Tuple[float, float]:
    """Mean and standard deviation over seeds.

    The standard deviation is the population one (``numpy.std``,
    ``ddof=0``), as numpy computes it by default.

    Args:
        scores (Sequence[float]): One score per seed.

    Returns:
        tuple[float, float]: (mean, std).

    Example:
        >>> seed_statistics([70.0])
        (70.0, 0.0)
    """
    if not scores:
        raise ValueError('seed_statistics: no scores.')
    values = np.asarray(scores, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=0))


def count_model(config: str, options: Sequence[str]) -> Dict[str, float]:
    """Trainable and total parameters of the model a run builds.

    The model is built from the config (with the run's options) on the
    ``meta`` device: no memory, no weight loading, no initialisation cost,
    so even ViT-B counts in a fraction of a second.

    Args:
        config (str): Config file.
        options (Sequence[str]): The run's ``--cfg-options``.

    Returns:
        dict: ``trainable``, ``total`` (ints) and ``trainable_percent``
        (``100 * trainable / total``; head included).

    Example:
        >>> count_model('configs/vapt/vit-b16_vtab-eurosat.py',
        ...             [])['trainable']
        63298
    """
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import vapt_mm  # noqa: F401  registers the models
    from vapt_mm.utils.parameter_count import count_parameters
    from .config_reader import parse_cfg_options

    cfg = Config.fromfile(config, import_custom_modules=False)
    parsed = parse_cfg_options(options)
    if parsed:
        cfg.merge_from_dict(parsed)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    counts = count_parameters(model)
    return dict(
        trainable=int(counts['trainable']),
        total=int(counts['total']),
        trainable_percent=float(counts['trainable_percent']))


def _run_entry(run: RunSpec, score: Optional[float], state: str,
               metric_name: str) -> dict:
    return dict(
        base_lr=run.base_lr,
        lr=run.lr,
        weight_decay=run.weight_decay,
        seed=run.seed,
        state=state,
        **{metric_name: score},
        work_dir=run.work_dir)


def build_summary(*,
                  task: str,
                  benchmark: str,
                  group: Optional[str],
                  method: str,
                  config: str,
                  batch_size: int,
                  max_epochs: int,
                  metric: str,
                  grid: List[Tuple[RunSpec, str, Optional[float]]],
                  best: Optional[Tuple[float, float]],
                  final: List[Tuple[RunSpec, str, Optional[float]]],
                  seeds: Sequence[int],
                  params: Optional[Dict[str, float]] = None) -> dict:
    """Assemble a task's summary.

    Args:
        task (str): Task name.
        benchmark (str): ``'vtab1k'`` or ``'fgvc'``.
        group (str, optional): Task group (``'Natural'``, ...).
        method (str): Method name.
        config (str): Config file.
        batch_size (int): Training batch size.
        max_epochs (int): Epochs per run.
        metric (str): Metric key.
        grid (list): ``(run, state, score)`` of each grid run.
        best (tuple[float, float], optional): Chosen (base lr, wd).
        final (list): ``(run, state, score)`` of each seed run.
        seeds (Sequence[int]): The planned seeds.
        params (dict, optional): Output of :func:`count_model`.

    Returns:
        dict: The summary (see ``docs/reproduce.md`` for the fields).

    Example:
        >>> summary = build_summary(task='dtd', ...)  # doctest: +SKIP
        >>> summary['test_top1_mean'], summary['complete']  # doctest: +SKIP
        (71.2, True)
    """
    grid_done = bool(grid) and all(score is not None for _, _, score in grid)
    test_scores = [score for _, _, score in final if score is not None]
    complete = (grid_done and best is not None
                and len(test_scores) == len(seeds))
    summary = dict(
        version=SUMMARY_VERSION,
        task=task,
        benchmark=benchmark,
        group=group,
        method=method,
        config=config,
        metric=metric,
        batch_size=batch_size,
        lr_scale=f'lr = base_lr * {batch_size} / {REFERENCE_BATCH_SIZE}',
        max_epochs=max_epochs,
        grid_splits=([grid[0][0].train_split, grid[0][0].eval_split]
                     if grid else []),
        grid=[_run_entry(r, s, st, 'val_top1') for r, st, s in grid],
        grid_complete=grid_done,
        tie_break=TIE_BREAK_RULE,
        best=None,
        final_splits=[],
        seeds=list(seeds),
        final=[_run_entry(r, s, st, 'test_top1') for r, st, s in final],
        test_top1=test_scores,
        test_top1_mean=None,
        test_top1_std=None,
        std_ddof=0,
        complete=complete,
        params=params,
    )
    if best is not None:
        best_run = next(r for r, _, _ in grid
                        if (r.base_lr, r.weight_decay) == best)
        best_score = next(s for r, _, s in grid
                          if (r.base_lr, r.weight_decay) == best)
        summary['best'] = dict(
            base_lr=best_run.base_lr,
            lr=best_run.lr,
            weight_decay=best_run.weight_decay,
            val_top1=best_score)
    if final:
        summary['final_splits'] = [final[0][0].train_split,
                                   final[0][0].eval_split]
    if test_scores:
        mean, std = seed_statistics(test_scores)
        summary['test_top1_mean'] = mean
        summary['test_top1_std'] = std
    return summary


def write_summary(task_dir: str, summary: dict) -> str:
    """Write ``<task_dir>/sweep_summary.json`` atomically.

    Args:
        task_dir (str): The task's folder in the sweep work dir.
        summary (dict): Output of :func:`build_summary`.

    Returns:
        str: The written path.
    """
    path = osp.join(task_dir, SUMMARY_FILE)
    with atomic_write(path, 'w') as f:
        json.dump(summary, f, indent=2)
    return path


def read_summary(path: str) -> dict:
    """Read a ``sweep_summary.json`` and check its required fields.

    Args:
        path (str): The file.

    Returns:
        dict: The summary.

    Raises:
        ValueError: If the file is not a summary this version understands.
    """
    try:
        with open(path, encoding='utf-8') as f:
            summary = json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f'{path} is not valid JSON: {err}') from err
    required = ('task', 'benchmark', 'test_top1', 'complete')
    missing = [k for k in required
               if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise DataError(f'{path} is not a sweep summary: it lacks '
                        f'{missing} (expected the file tools/sweep.py '
                        'writes).')
    if summary.get('version', SUMMARY_VERSION) > SUMMARY_VERSION:
        print_log(
            f'{path} has summary version {summary["version"]}, newer than '
            f'this reader ({SUMMARY_VERSION}); reading it anyway.',
            logger='current',
            level=logging.WARNING)
    return summary
