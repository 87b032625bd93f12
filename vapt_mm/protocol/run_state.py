"""Where a run stands, read from the files in its work dir.

mmengine 0.10.7 writes, per start of ``tools/train.py``, a timestamped log
dir ``<work_dir>/<YYYYmmdd_HHMMSS>/`` with ``vis_data/scalars.json`` (one
JSON object per line; validation lines hold the metrics, e.g.
``accuracy/top1``, and ``step`` = the epoch) and, in the work dir itself,
``epoch_<n>.pth`` checkpoints and a ``last_checkpoint`` file naming the
newest one. From these a run is:

* ``done``: its score is known: the sweep's own ``sweep_result.json``, or a
  validation line at ``step == max_epochs`` (then ``sweep_result.json`` is
  written), or the metrics of a ``tools/test.py`` evaluation;
* ``evaluate``: it trained all epochs but the final validation is missing;
* ``resume``: it has a checkpoint before the last epoch;
* ``new``: nothing to continue from.

Example:
    >>> from vapt_mm.protocol.run_state import run_status
    >>> status = run_status(run)  # doctest: +SKIP
    >>> status.state, status.score  # doctest: +SKIP
    ('done', 81.25)
"""
import glob
import json
import logging
import os.path as osp
import re
from typing import List, NamedTuple, Optional, Tuple

from mmengine.logging import print_log

from vapt_mm.engine.hooks.finite_loss_hook import DIVERGED_FILE
from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import ConfigError, ConfigKeyError
from .runs import RunSpec

__all__ = [
    'RESULT_FILE', 'EVAL_METRICS_FILE', 'TRAIN_LOG', 'DEFAULT_METRIC',
    'RunStatus', 'scalar_files', 'final_validation_score',
    'last_checkpoint', 'read_result', 'write_result', 'run_status'
]

#: The sweep's record of a finished run (its marker).
RESULT_FILE = 'sweep_result.json'
#: Metrics of a ``tools/test.py`` evaluation of the last checkpoint.
EVAL_METRICS_FILE = 'sweep_eval_metrics.json'
#: stdout and stderr of the run's processes.
TRAIN_LOG = 'sweep_train.log'
#: Metric that scores a run.
DEFAULT_METRIC = 'accuracy/top1'

_EPOCH_CKPT = re.compile(r'epoch_(\d+)\.pth$')


class RunStatus(NamedTuple):
    """Where a run stands.

    Args:
        state (str): ``'done'``, ``'evaluate'``, ``'resume'`` or ``'new'``.
        score (float, optional): The score, when done.
        source (str, optional): File the score was read from.
        checkpoint (str, optional): The newest checkpoint, if any.
    """

    state: str
    score: Optional[float] = None
    source: Optional[str] = None
    checkpoint: Optional[str] = None


def scalar_files(run_dir: str) -> List[str]:
    """``<run_dir>/<timestamp>/vis_data/scalars.json`` files, oldest first.

    Args:
        run_dir (str): The run's work dir.

    Returns:
        list[str]: Paths (timestamp names sort chronologically).
    """
    return sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                     'scalars.json')))


def _read_json_lines(path: str) -> List[dict]:
    records = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                # a line cut short by a killed process
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def final_validation_score(
        run_dir: str,
        max_epochs: int,
        metric: str = DEFAULT_METRIC) -> Optional[Tuple[float, str]]:
    """The metric of the validation after the last epoch, if logged.

    Takes the newest ``scalars.json`` that has a line with ``metric`` and
    ``step == max_epochs``; within it, the last such line.

    Args:
        run_dir (str): The run's work dir.
        max_epochs (int): The run's epochs.
        metric (str): Metric key. Defaults to ``'accuracy/top1'``.

    Returns:
        tuple[float, str] or None: (score, scalars file) or None.
    """
    for path in reversed(scalar_files(run_dir)):
        finals = [
            r for r in _read_json_lines(path)
            if metric in r and r.get('step') == max_epochs
        ]
        if finals:
            return float(finals[-1][metric]), path
    return None


def last_checkpoint(run_dir: str) -> Optional[Tuple[str, Optional[int]]]:
    """The checkpoint named by ``<run_dir>/last_checkpoint`` and its epoch.

    Args:
        run_dir (str): The run's work dir.

    Returns:
        tuple[str, int or None] or None: (checkpoint path, epoch parsed from
        an ``epoch_<n>.pth`` name, else None), or None without a readable
        ``last_checkpoint`` pointing at an existing file.
    """
    marker = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker, encoding='utf-8') as f:
        written = f.read().strip()
    if not written:
        return None
    # The path is written as the Runner saw it (maybe relative to another
    # cwd); the file itself sits in the work dir.
    local = osp.join(run_dir, osp.basename(written))
    path = local if osp.isfile(local) else written
    if not osp.isfile(path):
        return None
    match = _EPOCH_CKPT.search(osp.basename(path))
    return path, int(match.group(1)) if match else None


def read_result(run: RunSpec) -> Optional[dict]:
    """The run's ``sweep_result.json``, checked against the planned run.

    Args:
        run (RunSpec): The planned run.

    Returns:
        dict or None: The stored result, None if there is none.

    Raises:
        ValueError: If the stored result was made with other settings
            (lr, weight decay, seed, splits, epochs): reusing it would mix
            two protocols.
    """
    path = osp.join(run.work_dir, RESULT_FILE)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        stored = json.load(f)
    planned = run.identity()
    diffs = [
        f'{key}: stored {stored.get(key)!r}, planned {value!r}'
        for key, value in planned.items() if stored.get(key) != value
    ]
    if diffs:
        raise ConfigError(
            f'{path} was written by a run with other settings ('
            + '; '.join(diffs) + '). Use another --work-dir, or delete '
            f'{run.work_dir} to train this run again.')
    if list(stored.get('cfg_options', [])) != list(run.cfg_options):
        print_log(
            f'{run.name}: reusing the stored result although the '
            '--cfg-options differ from the ones it was trained with '
            f'(see {path}).',
            logger='current',
            level=logging.WARNING)
    return stored


#: The score of a run whose training diverged.
DIVERGED_SCORE = 0.0


def write_result(run: RunSpec, score: float, source: str,
                 metric: str = DEFAULT_METRIC) -> str:
    """Write the run's ``sweep_result.json`` (its finished marker).

    Args:
        run (RunSpec): The run.
        score (float): Its score.
        source (str): File the score was read from.
        metric (str): Metric name.

    Returns:
        str: The written path.

    Example:
        >>> write_result(run, 81.5, 'w/x/vis_data/scalars.json')
        ... # doctest: +SKIP
        'w/sweep_result.json'
    """
    path = osp.join(run.work_dir, RESULT_FILE)
    record = dict(run.identity())
    record.update(
        metric=metric,
        score=score,
        source=osp.relpath(source, run.work_dir),
        cfg_options=list(run.cfg_options))
    with atomic_write(path, 'w') as f:
        json.dump(record, f, indent=2)
    return path


def _eval_metrics_score(run_dir: str, metric: str) -> Optional[float]:
    path = osp.join(run_dir, EVAL_METRICS_FILE)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        metrics = json.load(f)
    if metric not in metrics:
        raise ConfigKeyError(f'{path} has no {metric!r}; it holds '
                             f'{sorted(metrics)}.')
    return float(metrics[metric])


def run_status(run: RunSpec,
               metric: str = DEFAULT_METRIC,
               record: bool = True) -> RunStatus:
    """Where a run stands; records the score of a newly finished run.

    Args:
        run (RunSpec): The planned run.
        metric (str): Metric that scores the run.
        record (bool): Write ``sweep_result.json`` when the score was found
            in mmengine's files. Defaults to True (False: read only).

    Returns:
        RunStatus: The state.

    Example:
        >>> from vapt_mm.protocol.runs import grid_run
        >>> run = grid_run('/tmp/no_such_sweep', 'dtd', 1.0, 0.0, 42, 64,
        ...                ('train800', 'val200'), 100)
        >>> run_status(run).state
        'new'
    """
    stored = read_result(run)
    if stored is not None:
        return RunStatus('done', float(stored['score']),
                         osp.join(run.work_dir, RESULT_FILE))
    diverged = osp.join(run.work_dir, DIVERGED_FILE)
    if osp.isfile(diverged):
        # FiniteLossHook stopped it: a finished run that scores 0 (the
        # published protocol's NaN runs predict one class; none can win).
        if record:
            write_result(run, DIVERGED_SCORE, diverged, metric)
        return RunStatus('done', DIVERGED_SCORE, diverged)
    final = final_validation_score(run.work_dir, run.max_epochs, metric)
    ckpt = last_checkpoint(run.work_dir)
    ckpt_path = ckpt[0] if ckpt else None
    if final is None and ckpt is not None and ckpt[1] == run.max_epochs:
        score = _eval_metrics_score(run.work_dir, metric)
        if score is not None:
            final = score, osp.join(run.work_dir, EVAL_METRICS_FILE)
        else:
            return RunStatus('evaluate', checkpoint=ckpt_path)
    if final is not None:
        if record:
            write_result(run, final[0], final[1], metric)
        return RunStatus('done', final[0], final[1], ckpt_path)
    if ckpt is not None:
        return RunStatus('resume', checkpoint=ckpt_path)
    return RunStatus('new')
