"""Speed and memory of prompt-tuning methods, measured side by side.

Builds one model per named method on one backbone (or one per config
file), plus the bare frozen backbone, and measures for each, interleaved
round robin so that drifting machine load hits all of them alike:

* training throughput (forward + loss + backward + SGD step), images/s;
* inference throughput (``torch.no_grad()`` forward in eval mode), images/s;
* peak tensor memory of one step of each kind;
* step-time ratios against the ``--baseline`` row (default: ``bare``).

It prints a Markdown table and writes everything to a JSON file. See
``docs/benchmark.md`` for how to read the numbers.

Example:
    Named methods on ViT-B/16, 2 CPU threads::

        python tools/analysis/benchmark.py \\
            --methods linear full vpt-shallow:10 vpt-deep:100 vapt:10 \\
            --backbone vit-b16 --threads 2 --batch-size 8 --repeats 5

    Multi-task: T tasks on one backbone, a mixed batch of B images against
    single-task batches and the T single-task models run one by one
    (inference only), plus the memory table for T = 1, 8, 32::

        python tools/analysis/benchmark.py --multi-task 8 \\
            --methods vpt-deep:10 vapt:10 --batch-size 32 --threads 2

    Config files (the bare row uses the first config's backbone)::

        python tools/analysis/benchmark.py \\
            configs/vpt/vit-b16-deep_vtab-eurosat.py \\
            configs/vapt/vit-b16_vtab-eurosat.py --device cuda
"""
import argparse
import os
import shlex
import sys
from typing import List, Optional

# The profiler that measures CPU peak memory logs its start and stop at
# every measurement unless kineto is told to stay quiet.
os.environ.setdefault('KINETO_LOG_LEVEL', '6')

from mmengine.config import DictAction  # noqa: E402

from vapt_mm.benchmark import (BACKBONE_PRESETS,  # noqa: E402
                               DEFAULT_METHODS, FAST_PATH_MODES,
                               run_benchmark)
from vapt_mm.benchmark.multi_task_case import \
    run_multi_task_benchmark  # noqa: E402
from vapt_mm.utils.user_errors import (  # noqa: E402
    add_debug_argument, run_tool)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments without the program name.
            Defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Benchmark training/inference speed and peak memory of '
        'prompt-tuning methods side by side.')
    parser.add_argument(
        'configs',
        nargs='*',
        help='config files to benchmark (instead of --methods); the bare '
        "row uses the first config's backbone")
    parser.add_argument(
        '--methods',
        nargs='+',
        help='named methods on --backbone: bare, linear, full, '
        'vpt-shallow:<p>, vpt-deep:<p>, vapt:<p>, a prompted one optionally '
        'suffixed :fast or :plain. Default (without configs): '
        f'{" ".join(DEFAULT_METHODS)}. The bare row is always added.')
    parser.add_argument(
        '--backbone',
        default='vit-b16',
        choices=sorted(BACKBONE_PRESETS),
        help='backbone of the named methods (random weights)')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=10,
        help='classes of the linear head of the named methods')
    parser.add_argument(
        '--fast-path',
        choices=sorted(FAST_PATH_MODES),
        help="the prompt necks' fast_path: auto (None), on (True), off "
        '(False), both (one row each); unset leaves the argument out')
    parser.add_argument(
        '--device', default='cpu', help='cpu, cuda or cuda:<index>')
    parser.add_argument(
        '--threads',
        type=int,
        help='torch intra-op threads (default: torch\'s current setting)')
    parser.add_argument(
        '--batch-size', type=int, default=8, help='training batch size')
    parser.add_argument(
        '--infer-batch-size',
        type=int,
        help='inference batch size (default: --batch-size)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=1,
        help='untimed steps per row and kind before measuring')
    parser.add_argument(
        '--repeats',
        type=int,
        default=5,
        help='timed measurements per row and kind (medians are reported)')
    parser.add_argument(
        '--iters',
        type=int,
        default=1,
        help='consecutive steps per measurement (their mean is one '
        'measurement)')
    parser.add_argument(
        '--baseline',
        default='bare',
        help='row label the step-time ratios refer to')
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='skip the peak-memory measurement')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of weights and batches')
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark/benchmark.json',
        help='JSON file to write')
    parser.add_argument(
        '--multi-task',
        type=int,
        metavar='T',
        help='benchmark T prompted tasks sharing one backbone instead: a '
        'mixed batch of --batch-size images (tasks cycle through --methods, '
        'default vpt-deep:10 vapt:10) against single-task models')
    parser.add_argument(
        '--task-counts',
        type=int,
        nargs='+',
        default=[1, 8, 32],
        help='with --multi-task: task counts of the memory table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config file, as in tools/train.py')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.configs and args.methods:
        parser.error('give config files or --methods, not both')
    if args.multi_task is not None and args.configs:
        parser.error('--multi-task takes --methods, not config files')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark, print the table and write the JSON.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        dict: The benchmark result (also written to ``--out``).
    """
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(['python', 'tools/analysis/benchmark.py', *argv])
    if args.multi_task is not None:
        result = run_multi_task_benchmark(
            methods=args.methods or ('vpt-deep:10', 'vapt:10'),
            num_tasks=args.multi_task, batch_size=args.batch_size,
            task_counts=args.task_counts, backbone=args.backbone,
            num_classes=args.num_classes, fast_path=args.fast_path,
            device=args.device, threads=args.threads, warmup=args.warmup,
            repeats=args.repeats, memory=not args.no_memory, seed=args.seed,
            out=args.out, command=command)
        print(result['table'])
        return result
    result = run_benchmark(
        methods=args.methods,
        configs=args.configs,
        backbone=args.backbone,
        num_classes=args.num_classes,
        fast_path=args.fast_path,
        device=args.device,
        threads=args.threads,
        batch_size=args.batch_size,
        infer_batch_size=args.infer_batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        iters=args.iters,
        baseline=args.baseline,
        memory=not args.no_memory,
        cfg_options=args.cfg_options,
        seed=args.seed,
        out=args.out,
        command=command)
    print(f"device {result['device']} ({result['device_name']}), "
          f"{result['threads']} threads, torch {result['torch_version']}, "
          f"batch {result['batch_size']} (inference "
          f"{result['infer_batch_size']}), medians of {result['repeats']} "
          f"interleaved repeats x {result['iters']} step(s)")
    print(result['table'])
    if result['memory_method']:
        print(f"peak memory: {result['memory_method']}")
    return result


if __name__ == '__main__':
    sys.exit(run_tool(main, 'benchmark.py'))
