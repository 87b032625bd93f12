"""Check a VTAB-1k or FGVC copy before training on it.

Prints, per task (data set) and split, the images found against the expected
count, then every problem (missing or unreadable images, labels out of
range, short splits, files that do not parse) and a summary. Exits 1 if
anything is wrong, 0 if everything is fine (2 for bad arguments).

Example:
    python tools/dataset_converters/check_dataset.py data/vtab-1k
    python tools/dataset_converters/check_dataset.py data/vtab-1k \
        --tasks dtd eurosat --splits train800val200 test
    python tools/dataset_converters/check_dataset.py data/fgvc \
        --benchmark fgvc --tasks cub
"""
import argparse
import sys
from typing import List, Optional

from vapt_mm.datasets.task_info import (FGVC_DATASETS, VTAB1K_SPLITS,
                                        VTAB1K_TASKS)
from vapt_mm.datasets.integrity import check_fgvc, check_vtab1k
from vapt_mm.utils.user_errors import add_debug_argument, run_tool


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Check a VTAB-1k or FGVC copy: image counts, labels, '
        'missing and unreadable images (see docs/datasets.md).')
    parser.add_argument(
        'data_root',
        help='VTAB-1k: the folder holding the 19 task folders; FGVC: the '
        'folder holding the data set folders')
    parser.add_argument(
        '--benchmark',
        choices=['vtab', 'fgvc'],
        default='vtab',
        help='which benchmark the folder holds (default: vtab)')
    parser.add_argument(
        '--tasks',
        nargs='+',
        metavar='NAME',
        help='tasks (VTAB-1k: ' + ', '.join(VTAB1K_TASKS) + ') or data '
        'sets (FGVC: ' + ', '.join(FGVC_DATASETS) + ') to check; all if '
        'omitted')
    parser.add_argument(
        '--splits',
        nargs='+',
        choices=VTAB1K_SPLITS,
        default=list(VTAB1K_SPLITS),
        help='VTAB-1k splits to check (default: all); FGVC always checks '
        'train, val and test')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='only check that images exist; skip opening them with PIL')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the check and print the report.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        int: 0 when everything is fine, 1 on any problem, 2 on a bad task
        name.
    """
    args = parse_args(argv)
    try:
        if args.benchmark == 'vtab':
            report = check_vtab1k(
                args.data_root,
                tasks=args.tasks,
                splits=args.splits,
                verify_images=not args.no_verify)
        else:
            report = check_fgvc(
                args.data_root,
                datasets=args.tasks,
                verify_images=not args.no_verify)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(run_tool(main, 'check_dataset.py'))
