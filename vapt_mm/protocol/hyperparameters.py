"""The hyper-parameter protocol of the published VTAB-1k numbers.

Grid search of (base lr, weight decay) on train800 -> val200, then five
seeds on train800val200 -> test with the best pair (docs/reproduce.md).
This module holds the defaults, the learning-rate scaling and the choice of
the best pair.

Example:
    >>> from vapt_mm.protocol.hyperparameters import scaled_lr, select_best
    >>> scaled_lr(2.5, batch_size=64)
    0.625
    >>> select_best({(10.0, 0.0): 80.0, (1.0, 0.001): 80.0,
    ...              (1.0, 0.0): 80.0, (5.0, 0.01): 75.0})
    (1.0, 0.001)
"""
import math
from typing import Dict, Iterable, Sequence, Tuple

import numpy as np

from vapt_mm.utils.user_errors import ConfigError

__all__ = [
    'DEFAULT_BASE_LRS', 'DEFAULT_WEIGHT_DECAYS', 'DEFAULT_SEEDS',
    'REFERENCE_BATCH_SIZE', 'SCORE_DECIMALS', 'TIE_BREAK_RULE', 'scaled_lr',
    'select_best', 'format_number', 'check_grid_values', 'check_seeds'
]

#: Base learning rates of the published grid (rates for a batch of 256).
DEFAULT_BASE_LRS: Tuple[float, ...] = (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5,
                                       0.25, 0.1, 0.05)

#: Weight decays of the published grid.
DEFAULT_WEIGHT_DECAYS: Tuple[float, ...] = (0.01, 0.001, 0.0001, 0.0)

#: Seeds of the final runs.
DEFAULT_SEEDS: Tuple[int, ...] = (42, 44, 82, 100, 800)

#: The batch size the base learning rates refer to.
REFERENCE_BATCH_SIZE = 256

#: Validation scores are compared after rounding to this many decimals, so
#: float noise in a logged accuracy cannot decide between two pairs.
SCORE_DECIMALS = 6

#: The tie-break, as written into every sweep summary.
TIE_BREAK_RULE = ('highest validation top-1 (rounded to 6 decimals); on a '
                  'tie the smaller base lr, then the larger weight decay')


def scaled_lr(base_lr: float,
              batch_size: int,
              reference_batch_size: int = REFERENCE_BATCH_SIZE) -> float:
    """The learning rate a run uses: ``base_lr * batch_size / 256``.

    Args:
        base_lr (float): Base learning rate (for a batch of 256).
        batch_size (int): Total batch size of the run.
        reference_batch_size (int): Batch size of the base rate. Defaults to
            256.

    Returns:
        float: The scaled learning rate.

    Example:
        >>> scaled_lr(50, 64)
        12.5
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f'batch size must be a positive int, got '
                          f'{batch_size!r}.')
    return float(base_lr) * batch_size / reference_batch_size


def format_number(value: float) -> str:
    """Short, exact text for a grid value, used in run folder names.

    Args:
        value (float): A learning rate, weight decay or seed.

    Returns:
        str: The shortest positional (not scientific) text that reads back
        as the same float, without a trailing ``.0`` (``2.5``, ``50``,
        ``0.0001``, ``0``).

    Example:
        >>> format_number(50.0), format_number(1e-4), format_number(0.0)
        ('50', '0.0001', '0')
    """
    return np.format_float_positional(float(value), trim='-')


def check_grid_values(name: str, values: Sequence[float],
                      allow_zero: bool) -> Tuple[float, ...]:
    """Validate a grid: finite, non-negative (or positive), no duplicates.

    Args:
        name (str): Option name for messages (``'--lrs'``).
        values (Sequence[float]): The grid values.
        allow_zero (bool): Whether 0 is a valid value.

    Returns:
        tuple[float, ...]: The values as floats, in the given order.

    Example:
        >>> check_grid_values('--wds', [0.01, 0], allow_zero=True)
        (0.01, 0.0)
    """
    out = tuple(float(v) for v in values)
    if not out:
        raise ConfigError(f'{name}: the grid is empty; give at least one '
                          'value.')
    for v in out:
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            expected = 'non-negative' if allow_zero else 'positive'
            raise ConfigError(f'{name}: {v!r} is not a valid value; expected '
                              f'{expected} finite numbers.')
    if len(set(out)) != len(out):
        raise ConfigError(f'{name}: duplicate values in {list(out)}.')
    return out


def check_seeds(seeds: Iterable[int]) -> Tuple[int, ...]:
    """Validate the seed list: non-negative ints without duplicates.

    Args:
        seeds (Iterable[int]): The seeds.

    Returns:
        tuple[int, ...]: The seeds, in the given order.

    Example:
        >>> check_seeds([42, 44])
        (42, 44)
    """
    out = tuple(seeds)
    if not out:
        raise ConfigError('--seeds: give at least one seed.')
    for s in out:
        if not isinstance(s, int) or s < 0:
            raise ConfigError(f'--seeds: {s!r} is not a valid seed; expected '
                              'non-negative integers.')
    if len(set(out)) != len(out):
        raise ConfigError(f'--seeds: duplicate seeds in {list(out)}.')
    return out


def select_best(
        scores: Dict[Tuple[float, float], float]) -> Tuple[float, float]:
    """The (base lr, weight decay) pair with the best validation score.

    Ties (equal scores after rounding to :data:`SCORE_DECIMALS` decimals)
    go to the smaller base learning rate, then to the larger weight decay:
    the more conservative setting. The result does not depend on the order
    of ``scores``.

    Args:
        scores (dict[tuple[float, float], float]): ``(base_lr, wd)`` to the
            validation top-1.

    Returns:
        tuple[float, float]: The chosen ``(base_lr, weight_decay)``.

    Example:
        >>> select_best({(50.0, 0.01): 60.0, (0.05, 0.0): 70.0})
        (0.05, 0.0)
    """
    if not scores:
        raise ValueError('select_best: no validation scores to choose from.')
    for pair, score in scores.items():
        if not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f'select_best: the score of (lr, wd)={pair} is '
                             f'{score!r}; expected a finite number.')
    return min(
        scores,
        key=lambda p: (-round(scores[p], SCORE_DECIMALS), p[0], -p[1]))
