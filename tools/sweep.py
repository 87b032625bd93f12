"""Run the published VTAB-1k protocol: lr x wd grid, then seeds, per task.

For each task: every (base lr, weight decay) pair is trained on train800 and
scored on val200; the best pair (ties: smaller lr, then larger wd) is then
trained on train800val200 with each seed and scored on test. The grid values
are base learning rates: a run uses lr = base_lr * batch / 256, with the
batch size read from the config. Each run is one ``tools/train.py`` process
in its own work dir; runs already scored are read back, interrupted ones are
resumed. ``<work-dir>/<task>/sweep_summary.json`` collects the results;
``tools/analysis/results_table.py`` turns summaries into the paper's table.

Example:
    One config, the task it names (eurosat), run here one after another::

        python tools/sweep.py configs/vapt/vit-b16_vtab-eurosat.py \\
            --work-dir work_dirs/sweep_vapt

    The per-task configs of a method, 4 runs at a time::

        python tools/sweep.py configs/vapt/vit-b16_vtab-*.py \\
            --work-dir work_dirs/sweep_vapt --gpus 4

    One config as a template for all 19 tasks (task and class count set
    per task)::

        python tools/sweep.py configs/vapt/vit-b16_vtab-eurosat.py \\
            --work-dir work_dirs/sweep_vapt --tasks all

    Write a Slurm array instead (then rerun the command after each array)::

        python tools/sweep.py configs/vapt/vit-b16_vtab-eurosat.py \\
            --work-dir work_dirs/sweep_vapt --tasks all --slurm \\
            --slurm-partition gpu --slurm-args=--time=08:00:00
"""
import argparse
import os.path as osp
import shlex
import sys
from typing import List, Optional

from vapt_mm.protocol import (DEFAULT_BASE_LRS, DEFAULT_SEEDS,
                              DEFAULT_WEIGHT_DECAYS, Sweep)
from vapt_mm.utils.user_errors import add_debug_argument, run_tool

TOOLS_DIR = osp.dirname(osp.abspath(__file__))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='VTAB-1k protocol: lr x wd grid on train800 -> val200, '
        'then seeds on train800val200 -> test')
    parser.add_argument(
        'configs',
        nargs='+',
        help='training config(s): one per task (each trains the task it '
        'names), or one template config with --tasks')
    parser.add_argument(
        '--work-dir',
        required=True,
        help='root of the run work dirs: <work-dir>/<task>/grid/..., '
        '<work-dir>/<task>/final/seed<n>, <work-dir>/<task>/'
        'sweep_summary.json')
    parser.add_argument(
        '--tasks',
        nargs='+',
        help='use the config as a template for these tasks (names, group '
        'names natural/specialized/structured, or "all"); its dataloaders '
        'and model.head.num_classes are set per task. Default: the task '
        'the config names')
    parser.add_argument(
        '--lrs',
        nargs='+',
        type=float,
        default=list(DEFAULT_BASE_LRS),
        help='base learning rates of the grid (for a batch of 256); '
        'default: %(default)s')
    parser.add_argument(
        '--wds',
        nargs='+',
        type=float,
        default=list(DEFAULT_WEIGHT_DECAYS),
        help='weight decays of the grid; default: %(default)s')
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        default=list(DEFAULT_SEEDS),
        help='seeds of the final runs; default: %(default)s')
    parser.add_argument(
        '--grid-seed',
        type=int,
        help='seed of the grid runs; default: the first of --seeds')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides for every run, passed on to '
        'tools/train.py (e.g. train_dataloader.dataset.data_root=...)')
    parser.add_argument(
        '--train-args',
        default='',
        help='more tools/train.py arguments as one string, e.g. "--amp"')
    parser.add_argument(
        '--metric',
        default='accuracy/top1',
        help='validation metric that scores a run; default: %(default)s')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        '--gpus',
        type=int,
        default=1,
        help='runs at a time, each with its own CUDA_VISIBLE_DEVICES '
        '(on a CPU machine: processes at a time); default: 1')
    mode.add_argument(
        '--slurm',
        action='store_true',
        help='write a Slurm array script of the runs that can start now '
        'instead of running them')
    mode.add_argument(
        '--dry-run',
        action='store_true',
        help='print the runs, their state and commands; run nothing')
    slurm = parser.add_argument_group('Slurm options (with --slurm)')
    slurm.add_argument('--slurm-partition', help='sbatch --partition')
    slurm.add_argument(
        '--slurm-job-name', default='vapt-sweep', help='sbatch --job-name')
    slurm.add_argument(
        '--slurm-gpus-per-run',
        type=int,
        default=1,
        help='GPUs per array task (0: none); default: %(default)s')
    slurm.add_argument(
        '--slurm-cpus-per-run',
        type=int,
        default=5,
        help='CPUs per array task; default: %(default)s')
    slurm.add_argument(
        '--slurm-max-parallel',
        type=int,
        help='array tasks running at once (sbatch --array=...%%N)')
    slurm.add_argument(
        '--slurm-args',
        action='append',
        default=[],
        metavar='OPTION',
        help='one more #SBATCH option per use, e.g. '
        '--slurm-args=--time=08:00:00 --slurm-args=--mem=32G')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the sweep.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        int: 0 if every task is complete (or nothing was meant to run), 1
        otherwise.
    """
    args = parse_args(argv)
    sweep = Sweep(
        args.configs,
        args.work_dir,
        train_script=osp.join(TOOLS_DIR, 'train.py'),
        test_script=osp.join(TOOLS_DIR, 'test.py'),
        tasks=args.tasks,
        base_lrs=args.lrs,
        weight_decays=args.wds,
        seeds=args.seeds,
        grid_seed=args.grid_seed,
        cfg_options=args.cfg_options,
        metric=args.metric,
        train_args=shlex.split(args.train_args))
    if args.dry_run:
        sweep.dry_run()
        return 0
    if args.slurm:
        sweep.write_slurm(
            job_name=args.slurm_job_name,
            partition=args.slurm_partition,
            gpus_per_run=args.slurm_gpus_per_run,
            cpus_per_run=args.slurm_cpus_per_run,
            max_parallel=args.slurm_max_parallel,
            extra_sbatch=args.slurm_args)
        return 0
    return 0 if sweep.run_local(num_slots=args.gpus) else 1


if __name__ == '__main__':
    sys.exit(run_tool(main, 'sweep.py'))
