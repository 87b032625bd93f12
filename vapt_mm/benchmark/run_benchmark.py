"""The whole benchmark: build the rows, time them side by side, report."""
import datetime
import platform
import sys
from typing import Optional, Sequence

import torch
from mmengine.logging import print_log

from ..utils.user_errors import ConfigError
from .case_builders import BARE_LABEL, build_bare_case, build_config_cases, \
    build_method_cases
from .interleaved_timing import measure_cases_memory, time_interleaved
from .method_specs import FAST_PATH_MODES, parse_methods
from .peak_memory import memory_method_description
from .report import format_markdown_table, summarize_rows, write_json

__all__ = ['run_benchmark', 'DEFAULT_METHODS']

DEFAULT_METHODS = ('bare', 'linear', 'full', 'vpt-shallow:10', 'vpt-deep:10',
                   'vapt:10')


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _resolve_device(device: str) -> torch.device:
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f'Unknown benchmark device {device!r}.') from error
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(
            f'Benchmark device {device!r} was requested, but torch sees no '
            'CUDA device; use --device cpu.')
    if resolved.type not in ('cpu', 'cuda'):
        raise ConfigError(
            f'Benchmark device {device!r}: only cpu and cuda are supported.')
    return resolved


def _versions() -> dict:
    import mmengine
    import mmpretrain

    import vapt_mm
    return dict(
        torch=torch.__version__,
        mmengine=mmengine.__version__,
        mmpretrain=mmpretrain.__version__,
        vapt_mm=vapt_mm.__version__,
        python=platform.python_version())


def run_benchmark(methods: Optional[Sequence[str]] = None,
                  configs: Optional[Sequence[str]] = None,
                  backbone: str = 'vit-b16',
                  num_classes: int = 10,
                  fast_path: Optional[str] = None,
                  device: str = 'cpu',
                  threads: Optional[int] = None,
                  batch_size: int = 8,
                  infer_batch_size: Optional[int] = None,
                  warmup: int = 1,
                  repeats: int = 5,
                  iters: int = 1,
                  baseline: str = BARE_LABEL,
                  memory: bool = True,
                  cfg_options: Optional[dict] = None,
                  seed: int = 0,
                  out: Optional[str] = None,
                  command: Optional[str] = None) -> dict:
    """Benchmark named methods or config files side by side.

    Builds one row per method (or config), always with a bare-backbone row
    (``'bare'``: the frozen backbone, no prompts, no head, gradients to the
    input images), times training and inference steps interleaved (see
    :func:`time_interleaved`), measures peak memory (see
    :func:`measure_peak_memory`) and reports medians and ratios to the
    ``baseline`` row.

    Args:
        methods (Sequence[str], optional): Method names (see
            :func:`parse_method`). Defaults to :data:`DEFAULT_METHODS` when
            no configs are given.
        configs (Sequence[str], optional): Config files instead of methods;
            the bare row uses the first config's backbone.
        backbone (str): Backbone preset of the named methods ('vit-b16',
            'vit-l16', 'tiny'). Defaults to 'vit-b16'.
        num_classes (int): Classes of the methods' linear head. Defaults
            to 10.
        fast_path (str, optional): 'auto', 'on', 'off' or 'both': the
            ``fast_path`` of every prompt neck without a ':fast'/':plain'
            suffix (None, True, False, or one row each). None leaves it
            out of the neck configs. Defaults to None.
        device (str): 'cpu', 'cuda' or 'cuda:<i>'. Defaults to 'cpu'.
        threads (int, optional): ``torch.set_num_threads``; None keeps the
            current setting. Defaults to None.
        batch_size (int): Training batch size. Defaults to 8.
        infer_batch_size (int, optional): Inference batch size. Defaults to
            ``batch_size``.
        warmup (int): Untimed steps per row and kind. Defaults to 1.
        repeats (int): Timed measurements per row and kind. Defaults to 5.
        iters (int): Steps per measurement. Defaults to 1.
        baseline (str): Row the ratios refer to. Defaults to 'bare'.
        memory (bool): Measure peak memory. Defaults to True.
        cfg_options (dict, optional): Overrides for every config.
        seed (int): Seed of the random weights and batches. Defaults to 0.
        out (str, optional): Write the result as JSON here.
        command (str, optional): The command line, recorded in the result.

    Returns:
        dict: ``rows`` (see :func:`summarize_rows`), ``table`` (Markdown),
        the settings, the measured ``threads``, ``device`` and the package
        versions.

    Example:
        >>> result = run_benchmark(['bare', 'vapt:4'], backbone='tiny',
        ...                        batch_size=2, warmup=1, repeats=2)
        >>> [row['label'] for row in result['rows']]
        ['bare', 'vapt:4']
        >>> print(result['table'])  # doctest: +SKIP
    """
    if methods and configs:
        raise ConfigError(
            'Give config files or named methods, not both: the bare '
            "baseline row is built from the named methods' backbone or from "
            "the first config's backbone.")
    if fast_path is not None and fast_path not in FAST_PATH_MODES:
        raise ConfigError(
            f'Unknown fast-path mode {fast_path!r}; expected one of '
            f'{", ".join(FAST_PATH_MODES)}.')
    resolved = _resolve_device(device)
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ConfigError(
                f'threads must be a positive integer, got {threads!r}.')
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    case_kwargs = dict(
        batch_size=batch_size,
        infer_batch_size=infer_batch_size,
        device=resolved,
        seed=seed)

    if configs:
        cases, first_backbone = build_config_cases(
            configs, cfg_options, fast_path, num_classes, **case_kwargs)
        if first_backbone is None:
            raise ConfigError(
                f'Benchmark config {configs[0]!r} has no model.backbone to '
                'build the bare baseline row from.')
        if BARE_LABEL in [case.label for case in cases]:
            raise ConfigError(
                f'A config is named {BARE_LABEL!r}, the name of the bare '
                'backbone row; rename the file.')
        cases.insert(
            0,
            build_bare_case(
                first_backbone,
                info=dict(source='bare backbone', config=configs[0]),
                **case_kwargs))
        named_backbone = None
    else:
        names = list(methods or DEFAULT_METHODS)
        specs = parse_methods(names, fast_path)
        if BARE_LABEL not in [spec.label for spec in specs]:
            specs = parse_methods([BARE_LABEL]) + specs
        cases = build_method_cases(specs, backbone, num_classes,
                                   **case_kwargs)
        named_backbone = backbone
    labels = [case.label for case in cases]
    if baseline not in labels:
        raise ConfigError(
            f'Baseline row {baseline!r} is not among the benchmark rows '
            f'{labels}.')

    print_log(
        f'Benchmarking {labels} on {resolved} with '
        f'{torch.get_num_threads()} threads: warm-up {warmup}, repeats '
        f'{repeats} x {iters} step(s), interleaved.',
        logger='current')
    times = time_interleaved(cases, warmup, repeats, iters)
    peaks = measure_cases_memory(cases) if memory else None
    rows = summarize_rows(cases, times, peaks, baseline)

    result = dict(
        command=command if command is not None else ' '.join(sys.argv),
        timestamp=datetime.datetime.now().isoformat(timespec='seconds'),
        versions=_versions(),
        torch_version=torch.__version__,
        device=str(resolved),
        device_name=(torch.cuda.get_device_name(resolved)
                     if resolved.type == 'cuda' else _cpu_name()),
        threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        backbone=named_backbone,
        configs=list(configs or []),
        fast_path=fast_path,
        batch_size=batch_size,
        infer_batch_size=infer_batch_size or batch_size,
        warmup=warmup,
        repeats=repeats,
        iters=iters,
        seed=seed,
        baseline=baseline,
        memory_method=memory_method_description(resolved) if memory else None,
        rows=rows,
        table=format_markdown_table(rows, baseline))
    if out:
        write_json(result, out)
        print_log(f'Benchmark result written to {out}', logger='current')
    return result
