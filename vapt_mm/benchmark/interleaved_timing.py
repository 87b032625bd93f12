"""Time benchmark cases side by side: warm-up, then round-robin repeats."""
from typing import Dict, List, Sequence

from .benchmark_case import BenchmarkCase
from .peak_memory import measure_peak_memory

__all__ = ['time_interleaved', 'measure_cases_memory']


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(
            f'{name} must be an integer >= {minimum}, got {value!r}.')


def time_interleaved(cases: Sequence[BenchmarkCase],
                     warmup: int = 1,
                     repeats: int = 5,
                     iters: int = 1) -> Dict[str, Dict[str, List[float]]]:
    """Seconds per training and inference step of every case, per repeat.

    Every case first runs ``warmup`` training and inference steps (round
    robin). Then each repeat times one training measurement and one
    inference measurement of every case in turn, so drifting machine load
    (other processes, clock boost, thermal limits) hits all cases alike.
    Repeat ``r`` starts with case ``r mod n``, so no case always runs right
    after the same neighbour. Each inference measurement follows one
    untimed inference step, because the training step before it changed the
    weights that inference-time caches depend on.

    Args:
        cases (Sequence[BenchmarkCase]): The cases; labels must be unique.
        warmup (int): Untimed training + inference steps per case.
            Defaults to 1.
        repeats (int): Timed measurements per case and step kind.
            Defaults to 5.
        iters (int): Consecutive steps per measurement (their mean is the
            measurement). Defaults to 1.

    Returns:
        dict: ``{label: {'train': [s, ...], 'infer': [s, ...]}}``, one
        entry per repeat, in repeat order.

    Example:
        >>> from vapt_mm.benchmark import (build_method_cases,
        ...                                      parse_methods)
        >>> cases = build_method_cases(parse_methods(['bare', 'vapt:4']),
        ...                            'tiny', batch_size=2)
        >>> times = time_interleaved(cases, warmup=1, repeats=3)
        >>> len(times['bare']['train']), len(times['vapt:4']['infer'])
        (3, 3)
    """
    _check_count('warmup', warmup, 0)
    _check_count('repeats', repeats, 1)
    _check_count('iters', iters, 1)
    labels = [case.label for case in cases]
    if len(set(labels)) != len(labels):
        raise ValueError(f'Benchmark row labels must be unique: {labels}.')
    for _ in range(warmup):
        for case in cases:
            case.train_step()
            case.infer_step()
    times = {label: dict(train=[], infer=[]) for label in labels}
    for repeat in range(repeats):
        start = repeat % len(cases)
        for case in list(cases[start:]) + list(cases[:start]):
            times[case.label]['train'].append(case.time_steps(True, iters))
            # The training step just changed the trainable weights: one
            # untimed inference step lets caches keyed to the weights
            # (prompt keys/values of static prompts) refill, so inference
            # is timed in its steady state, as deployed.
            case.infer_step()
            times[case.label]['infer'].append(case.time_steps(False, iters))
    return times


def measure_cases_memory(
        cases: Sequence[BenchmarkCase]) -> Dict[str, Dict[str, int]]:
    """Peak memory of one training and one inference step of every case.

    Measured after the cases have run (warm): optimizer state exists and
    counts as memory alive before the step, the gradients of the previous
    step are released first so each training step allocates its own. See
    :func:`~vapt_mm.benchmark.measure_peak_memory` for the method.

    Args:
        cases (Sequence[BenchmarkCase]): The cases.

    Returns:
        dict: ``{label: {'train': bytes, 'infer': bytes}}``.

    Example:
        >>> from vapt_mm.benchmark import (build_method_cases,
        ...                                      parse_methods)
        >>> cases = build_method_cases(parse_methods(['bare']), 'tiny',
        ...                            batch_size=2)
        >>> measure_cases_memory(cases)['bare']['train'] > 0
        True
    """
    memory = {}
    for case in cases:
        case.release_grads()
        train = measure_peak_memory(case.train_step, case.device)
        case.release_grads()
        infer = measure_peak_memory(case.infer_step, case.device)
        memory[case.label] = dict(train=train, infer=infer)
    return memory
