"""The multi-task case of the speed benchmark.

T tasks share one frozen backbone. A mixed batch of B images (task ``i %
T`` for image ``i``) runs through :class:`MultiTaskPromptedClassifier`
(one backbone pass), against

* each method's single-task model on one batch of the same B images, and
* the T single-task models run one after another, each on its own B/T
  images (what serving the tasks separately costs).

All are inference steps (eval mode, ``torch.no_grad()``), timed
interleaved round robin like the main benchmark. Then the memory table:
for T in ``task_counts``, the parameter memory of the multi-task model
(backbone + tasks) and the peak tensor memory of one mixed batch.
"""
import datetime
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmpretrain.registry import MODELS

from ..models import MultiTaskPromptedClassifier
from .benchmark_case import synchronize
from .method_specs import backbone_preset, method_model_cfg, parse_methods
from .peak_memory import measure_peak_memory, memory_method_description
from .report import MIB, write_json
from .run_benchmark import _cpu_name, _resolve_device, _versions

__all__ = [
    'build_task_models', 'mixed_tasks', 'time_inference_round_robin',
    'run_multi_task_benchmark', 'format_multi_task_tables'
]

MIXED_LABEL = 'mixed'
SEQUENTIAL_LABEL = 'sequential'


def build_task_models(methods: Sequence[str],
                      num_tasks: int,
                      backbone: str = 'vit-b16',
                      num_classes: int = 10,
                      fast_path: Optional[str] = None,
                      device: str = 'cpu') -> Dict[str, torch.nn.Module]:
    """T single-task ``PromptedClassifier`` models on one backbone object.

    Task ``i`` (named ``task00``, ``task01``, ...) uses method
    ``methods[i % len(methods)]``.

    Args:
        methods (Sequence[str]): Prompted method names, e.g.
            ``['vpt-deep:10', 'vapt:10']``.
        num_tasks (int): T.
        backbone (str): Backbone preset. Defaults to 'vit-b16'.
        num_classes (int): Classes of every head. Defaults to 10.
        fast_path (str, optional): 'auto', 'on' or 'off' for every neck.
        device (str): Where the models live. Defaults to 'cpu'.

    Returns:
        dict: Task name -> model in eval mode, in task order.

    Example:
        >>> models = build_task_models(['vpt-deep:2', 'vapt:3'], 3, 'tiny')
        >>> [m.neck.num_tokens for m in models.values()]
        [2, 3, 2]
    """
    if not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(
            f'The number of tasks must be a positive integer, got '
            f'{num_tasks!r}.')
    if fast_path == 'both':
        raise ValueError('The multi-task case takes --fast-path auto, on or '
                         'off (one setting for every task), not both.')
    specs = parse_methods(methods, fast_path)
    unprompted = [spec.label for spec in specs if not spec.prompted]
    if unprompted or not specs:
        raise ValueError(
            f'The multi-task case needs prompted methods (vpt-shallow:<p>, '
            f'vpt-deep:<p>, vapt:<p>), got {list(methods)}.')
    backbone_cfg = backbone_preset(backbone)
    shared = MODELS.build(dict(backbone_cfg))
    models = {}
    for index in range(num_tasks):
        spec = specs[index % len(specs)]
        cfg = method_model_cfg(spec, backbone_cfg, shared.embed_dims,
                               num_classes)
        cfg['backbone'] = shared
        model = MODELS.build(cfg).to(device).eval()
        model.benchmark_method = spec.label
        models[f'task{index:02d}'] = model
    return models


def mixed_tasks(names: Sequence[str], batch_size: int) -> List[str]:
    """Task of every image of a mixed batch: round robin over ``names``.

    Example:
        >>> mixed_tasks(['a', 'b', 'c'], 5)
        ['a', 'b', 'c', 'a', 'b']
    """
    return [names[i % len(names)] for i in range(batch_size)]


def time_inference_round_robin(steps: Dict[str, Callable[[], object]],
                               warmup: int = 1,
                               repeats: int = 3,
                               device: str = 'cpu'
                               ) -> Dict[str, Dict[str, List[float]]]:
    """Wall-clock and CPU seconds per call of each step, round robin.

    Each step runs ``warmup`` times untimed; then each repeat times every
    step once, repeat ``r`` starting with step ``r mod n``, so drifting
    machine load hits all of them alike. Besides wall-clock time the
    process's CPU time (all threads, ``time.process_time``) is recorded: on
    a machine shared with other jobs it varies much less, because time
    spent waiting for a core is not counted.

    Args:
        steps (dict): Label -> callable running one inference step.
        warmup (int): Untimed calls per step. Defaults to 1.
        repeats (int): Timed calls per step. Defaults to 3.
        device (str): For synchronisation. Defaults to 'cpu'.

    Returns:
        dict: Label -> ``{'wall': [s, ...], 'cpu': [s, ...]}``, one entry
        per repeat.

    Example:
        >>> times = time_inference_round_robin(dict(a=lambda: None),
        ...                                    repeats=2)
        >>> len(times['a']['wall']), len(times['a']['cpu'])
        (2, 2)
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f'repeats must be an integer >= 1, got {repeats!r}.')
    device = torch.device(device)
    labels = list(steps)
    with torch.no_grad():
        for _ in range(warmup):
            for label in labels:
                steps[label]()
        times = {label: dict(wall=[], cpu=[]) for label in labels}
        for repeat in range(repeats):
            start = repeat % len(labels)
            for label in labels[start:] + labels[:start]:
                synchronize(device)
                wall, cpu = time.perf_counter(), time.process_time()
                steps[label]()
                synchronize(device)
                times[label]['wall'].append(time.perf_counter() - wall)
                times[label]['cpu'].append(time.process_time() - cpu)
    return times


def _task_param_bytes(model: MultiTaskPromptedClassifier) -> int:
    return sum(p.numel() * p.element_size()
               for part in (model.necks, model.heads)
               for p in part.parameters())


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _speed_steps(models: Dict[str, torch.nn.Module],
                 images: torch.Tensor) -> Dict[str, Callable[[], object]]:
    names = list(models)
    tasks = mixed_tasks(names, images.shape[0])
    multi = MultiTaskPromptedClassifier.from_classifiers(models).eval()
    steps = {MIXED_LABEL: lambda: multi(images, tasks=tasks)}
    for name, model in models.items():
        label = f'single {model.benchmark_method}'
        if label not in steps:
            steps[label] = (lambda m=model: m(images))
    per_task = {
        name: images[[i for i, t in enumerate(tasks) if t == name]]
        for name in names
    }

    def sequential() -> None:
        for name, model in models.items():
            model(per_task[name])

    steps[SEQUENTIAL_LABEL] = sequential
    return steps


def run_multi_task_benchmark(methods: Sequence[str] = ('vpt-deep:10',
                                                       'vapt:10'),
                             num_tasks: int = 8,
                             batch_size: int = 32,
                             task_counts: Sequence[int] = (1, 8, 32),
                             backbone: str = 'vit-b16',
                             num_classes: int = 10,
                             fast_path: Optional[str] = None,
                             device: str = 'cpu',
                             threads: Optional[int] = None,
                             warmup: int = 1,
                             repeats: int = 3,
                             memory: bool = True,
                             seed: int = 0,
                             out: Optional[str] = None,
                             command: Optional[str] = None) -> dict:
    """Time a mixed multi-task batch against single-task models.

    Args:
        methods (Sequence[str]): The tasks' methods, cycled over the tasks.
            Defaults to VPT-deep and VAPT with 10 prompts.
        num_tasks (int): T of the speed comparison. Defaults to 8.
        batch_size (int): B. Defaults to 32.
        task_counts (Sequence[int]): T values of the memory table.
            Defaults to (1, 8, 32).
        backbone (str): Backbone preset. Defaults to 'vit-b16'.
        num_classes (int): Classes per task. Defaults to 10.
        fast_path (str, optional): 'auto', 'on' or 'off' for every neck.
        device (str): 'cpu' or 'cuda[:i]'. Defaults to 'cpu'.
        threads (int, optional): ``torch.set_num_threads``.
        warmup (int): Untimed calls per row. Defaults to 1.
        repeats (int): Timed calls per row. Defaults to 3.
        memory (bool): Also measure peak memory. Defaults to True.
        seed (int): Seed of weights and images. Defaults to 0.
        out (str, optional): Write the result as JSON here.
        command (str, optional): The command line, recorded.

    Returns:
        dict: ``speed_rows`` (label, median wall-clock and CPU seconds per
        step, images/s, the mixed batch's step time divided by the row's,
        for both clocks), ``memory_rows`` (T, parameter MiB, task MiB, peak
        MiB), ``budgets`` (the ratios the budgets name, for both clocks,
        and whether they are met) and the settings.

    Example:
        >>> result = run_multi_task_benchmark(
        ...     ['vpt-deep:2', 'vapt:2'], num_tasks=2, batch_size=4,
        ...     task_counts=(1, 2), backbone='tiny', repeats=1)
        ... # doctest: +SKIP
        >>> [row['label'] for row in result['speed_rows']]  # doctest: +SKIP
        ['mixed', 'single vpt-deep:2', 'single vapt:2', 'sequential']
    """
    resolved = _resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    most = max([num_tasks, *task_counts])
    models = build_task_models(methods, most, backbone, num_classes,
                               fast_path, str(resolved))
    names = list(models)
    first = models[names[0]]
    height = width = first.backbone_adapter.patch_grid[0] * \
        first.backbone_adapter.patch_size[0]
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, height, width,
                         generator=generator).to(resolved)

    speed_models = {name: models[name] for name in names[:num_tasks]}
    steps = _speed_steps(speed_models, images)
    print_log(
        f'Multi-task benchmark: {list(steps)} with T={num_tasks}, '
        f'B={batch_size} on {resolved} with {torch.get_num_threads()} '
        f'threads, warm-up {warmup}, repeats {repeats}.',
        logger='current')
    times = time_inference_round_robin(steps, warmup, repeats, resolved)
    mixed = {kind: statistics.median(times[MIXED_LABEL][kind])
             for kind in ('wall', 'cpu')}
    speed_rows = []
    for label, measured in times.items():
        step_s = statistics.median(measured['wall'])
        cpu_s = statistics.median(measured['cpu'])
        speed_rows.append(
            dict(label=label, step_s=step_s, img_s=batch_size / step_s,
                 cpu_s=cpu_s, times_s=list(measured['wall']),
                 cpu_times_s=list(measured['cpu']),
                 mixed_vs_row=mixed['wall'] / step_s,
                 mixed_vs_row_cpu=mixed['cpu'] / cpu_s))
    singles = [row for row in speed_rows if row['label'].startswith('single')]
    sequential = next(r for r in speed_rows
                      if r['label'] == SEQUENTIAL_LABEL)
    budgets = dict(mixed_vs_single_budget=1.15)
    for suffix, key in (('', 'mixed_vs_row'), ('_cpu', 'mixed_vs_row_cpu')):
        budgets['mixed_vs_single_max' + suffix] = max(row[key]
                                                      for row in singles)
        budgets['mixed_vs_sequential' + suffix] = sequential[key]
        budgets['met' + suffix] = (
            budgets['mixed_vs_single_max' + suffix] <= 1.15
            and budgets['mixed_vs_sequential' + suffix] < 1.0)

    memory_rows = []
    for count in task_counts:
        multi = MultiTaskPromptedClassifier.from_classifiers(
            {name: models[name] for name in names[:count]}).eval()
        tasks = mixed_tasks(names[:count], batch_size)
        peak = None
        if memory:
            with torch.no_grad():
                peak = measure_peak_memory(
                    lambda: multi(images, tasks=tasks), resolved) / MIB
        memory_rows.append(
            dict(num_tasks=count,
                 param_mib=_param_bytes(multi) / MIB,
                 task_param_mib=_task_param_bytes(multi) / MIB,
                 backbone_param_mib=_param_bytes(multi.backbone) / MIB,
                 infer_peak_mib=peak))

    result = dict(
        command=command if command is not None else ' '.join(sys.argv),
        timestamp=datetime.datetime.now().isoformat(timespec='seconds'),
        versions=_versions(),
        device=str(resolved),
        device_name=(torch.cuda.get_device_name(resolved)
                     if resolved.type == 'cuda' else _cpu_name()),
        threads=torch.get_num_threads(),
        backbone=backbone,
        methods=list(methods),
        num_tasks=num_tasks,
        batch_size=batch_size,
        fast_path=fast_path,
        warmup=warmup,
        repeats=repeats,
        seed=seed,
        memory_method=(memory_method_description(resolved)
                       if memory else None),
        speed_rows=speed_rows,
        memory_rows=memory_rows,
        budgets=budgets)
    result['table'] = format_multi_task_tables(result)
    if out:
        write_json(result, out)
        print_log(f'Multi-task benchmark written to {out}', logger='current')
    return result


def format_multi_task_tables(result: dict) -> str:
    """The speed and memory tables of a multi-task result, in Markdown.

    Args:
        result (dict): From :func:`run_multi_task_benchmark`.

    Returns:
        str: Two tables separated by a blank line.
    """
    batch, tasks = result['batch_size'], result['num_tasks']
    lines = [
        f'| T={tasks}, B={batch} | wall s | img/s | mixed / row (wall) | '
        'CPU s | mixed / row (CPU) |', '|---|---:|---:|---:|---:|---:|'
    ]
    for row in result['speed_rows']:
        label = row['label']
        if label == SEQUENTIAL_LABEL:
            label = f'{tasks} single-task models, {batch // tasks} img each'
        elif label == MIXED_LABEL:
            label = f'mixed batch, {tasks} tasks'
        else:
            label = f'{label}, one batch of {batch}'
        lines.append(f"| {label} | {row['step_s']:.2f} | {row['img_s']:.2f} "
                     f"| {row['mixed_vs_row']:.2f}x | {row['cpu_s']:.2f} | "
                     f"{row['mixed_vs_row_cpu']:.2f}x |")
    lines += [
        '', '| tasks T | params MiB | of which tasks MiB | '
        f'peak MiB, mixed batch of {batch} |', '|---:|---:|---:|---:|'
    ]
    for row in result['memory_rows']:
        peak = row['infer_peak_mib']
        lines.append(f"| {row['num_tasks']} | {row['param_mib']:.1f} | "
                     f"{row['task_param_mib']:.2f} | "
                     f"{'-' if peak is None else f'{peak:.1f}'} |")
    return '\n'.join(lines)
