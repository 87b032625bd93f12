"""One log line per served batch: its size and which tasks it mixes."""
import logging
from collections import Counter
from typing import Sequence

from mmengine.logging import print_log

__all__ = ['task_mix', 'log_batch']


def task_mix(tasks: Sequence[str]) -> str:
    """``'a=3 b=3 c=2'``: how many samples of each task, in order of first
    appearance.

    Args:
        tasks (Sequence[str]): The task of each sample of a batch.

    Returns:
        str: ``name=count`` pairs separated by spaces.

    Example:
        >>> task_mix(['a', 'b', 'a', 'c', 'b', 'a'])
        'a=3 b=2 c=1'
    """
    return ' '.join(f'{name}={count}'
                    for name, count in Counter(tasks).items())


def log_batch(tasks: Sequence[str], rejected: int = 0) -> str:
    """Log ``batch of N: a=3 b=3 c=2`` (with ``, R rejected`` when some
    requests of the batch were refused before the model ran).

    Args:
        tasks (Sequence[str]): The task of each image the model runs on.
        rejected (int): Requests of the batch that were refused.

    Returns:
        str: The logged line.

    Example:
        >>> log_batch(['a', 'b', 'a'], rejected=1)  # doctest: +SKIP
        'batch of 4: a=2 b=1, 1 rejected'
    """
    parts = [task_mix(tasks)] if tasks else []
    if rejected:
        parts.append(f'{rejected} rejected')
    line = f'batch of {len(tasks) + rejected}: ' + ', '.join(parts)
    print_log(line, logger='current', level=logging.INFO)
    return line
