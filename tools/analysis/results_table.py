"""Write the paper's results table from tools/sweep.py work dirs.

Reads ``<work-dir>/<task>/sweep_summary.json`` of each work dir (one work dir
per method) and writes to ``--out-dir``:

* ``results_table.md``: per-task mean ± std, group means, 19-task mean,
  FGVC mean and tuned parameter share, beside the published numbers;
  incomplete groups are marked ``(k of n tasks)``;
* ``results_summary.csv`` (one row per method) and ``results_per_task.csv``
  (one row per task);
* ``results_per_task.png``: per-task bars against the published numbers.

Example:
    ::

        python tools/analysis/results_table.py \\
            work_dirs/sweep_vapt work_dirs/sweep_vpt-deep \\
            --labels VAPT VPT-deep --out-dir work_dirs/results
"""
import argparse
import sys
from typing import List, Optional

from mmengine.logging import print_log

from vapt_mm.protocol.results_table import write_results
from vapt_mm.utils.user_errors import add_debug_argument, run_tool


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Results table (Markdown, CSV, PNG) from sweep work dirs')
    parser.add_argument(
        'work_dirs',
        nargs='+',
        help='tools/sweep.py --work-dir folders, one per method')
    parser.add_argument(
        '--out-dir', required=True, help='folder for the written files')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='column label per work dir (default: the folder names)')
    parser.add_argument(
        '--no-plot', action='store_true', help='do not write the PNG')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Write the table.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        int: 0.
    """
    args = parse_args(argv)
    written = write_results(
        args.work_dirs, args.out_dir, labels=args.labels,
        plot=not args.no_plot)
    for kind, path in written.items():
        print_log(f'{kind}: {path}', logger='current')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'results_table.py'))
