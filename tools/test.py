"""Evaluate a checkpoint on the test set of a config with the mmengine Runner.

vapt_mm's counterpart of mmpretrain's ``tools/test.py``: same command line
for ``config``, ``checkpoint``, ``--work-dir``, ``--out``/``--out-item``,
``--cfg-options`` and ``--launcher``. ``--launcher`` also works on machines
without a GPU (gloo on CPU, see ``vapt_mm.engine.dist_cpu``). Before the
Runner starts, a preflight checks the test data and the head
(``vapt_mm.engine.preflight``); errors a user can fix are printed without a
traceback (``--debug`` or ``VAPT_MM_DEBUG=1`` shows it). See docs/errors.md.

Example:
    Test and dump the predictions (a pickled list of dicts with
    ``pred_score``, ``pred_label`` and ``gt_label`` per image)::

        python tools/test.py configs/vapt/vit-b16_vtab-eurosat.py \\
            work_dirs/vit-b16_vtab-eurosat/epoch_100.pth --out preds.pkl

    Two processes::

        bash tools/dist_test.sh configs/vapt/vit-b16_vtab-eurosat.py \\
            work_dirs/vit-b16_vtab-eurosat/epoch_100.pth 2
"""
import argparse
import logging
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import mmengine
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from vapt_mm.engine.dist_cpu import is_cpu_only, setup_cpu_distributed
from vapt_mm.engine.dist_shutdown import shutdown_distributed
from vapt_mm.engine.preflight import load_config, preflight_test
from vapt_mm.models.classifiers import checkpoint_source
from vapt_mm.utils.user_errors import (ConfigKeyError, MissingFileError,
                                       add_debug_argument, errors_doc,
                                       run_tool, user_message)

# DumpResults writes pickles; mmengine.dump picks the format by suffix.
PRED_SUFFIXES = ('.pkl', '.pickle')
METRIC_SUFFIXES = ('.json', '.yaml', '.yml', '.pkl', '.pickle')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments without the program name.
            Defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The parsed arguments.

    Example:
        >>> parse_args(['my_config.py', 'epoch_100.pth']).checkpoint
        'epoch_100.pth'
    """
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a checkpoint with mmengine')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        help='dump the predictions to this .pkl file (or, with --out-item '
        'metrics, the metrics to a .json, .yaml or .pkl file)')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='what --out holds; defaults to the predictions')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable the pin_memory option in the test dataloader')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs (nested '
        'keys with dots, lists as key="[a,b]" without spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.out is None and args.out_item is not None:
        parser.error('--out-item needs --out to name the output file')
    if args.out is not None:
        suffixes = (PRED_SUFFIXES if args.out_item in (None, 'pred') else
                    METRIC_SUFFIXES)
        if not args.out.endswith(suffixes):
            parser.error(f'--out {args.out}: the {args.out_item or "pred"} '
                         f'file must end with one of {", ".join(suffixes)}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line into the config.

    Args:
        cfg (Config): The loaded config.
        args (argparse.Namespace): The parsed command line.

    Returns:
        Config: The same config object, updated.

    Example:
        >>> args = parse_args(['configs/vapt/vit-b16_vtab-eurosat.py',
        ...                    'epoch_100.pth'])
        >>> # epoch_100.pth must exist
        >>> merge_args(Config.fromfile(args.config),
        ...            args).load_from  # doctest: +SKIP
        'epoch_100.pth'
    """
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    is_url = '://' in args.checkpoint
    if not is_url and not osp.isfile(args.checkpoint):
        raise MissingFileError(
            user_message(
                f'Checkpoint file {args.checkpoint} does not exist.',
                fix='pass the .pth file that tools/train.py wrote (in its '
                'work dir)',
                docs=errors_doc('checkpoint-missing')))
    cfg.load_from = args.checkpoint

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    loader = cfg.get('test_dataloader', None)
    if loader is None:
        raise ConfigKeyError(
            f'The config {args.config} has no test_dataloader (see '
            f'{errors_doc("config-values")}).')
    loader.setdefault('collate_fn', dict(type='default_collate'))
    if args.no_pin_memory or is_cpu_only():
        loader['pin_memory'] = False
    else:
        loader.setdefault('pin_memory', True)
    num_workers = loader.get('num_workers', 0)
    if num_workers == 0 and loader.get('persistent_workers', False):
        print_log(
            'test_dataloader.persistent_workers=True has no effect with '
            'test_dataloader.num_workers=0; setting it to False.',
            logger='current',
            level=logging.WARNING)
        loader['persistent_workers'] = False
    return cfg


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Load the config, merge the command line and test.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        dict: The test metrics.

    Example:
        >>> main(['configs/vapt/vit-b16_vtab-eurosat.py',
        ...       'epoch_100.pth'])  # doctest: +SKIP
        {'accuracy/top1': 96.2}
    """
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = merge_args(cfg, args)
    preflight_test(cfg)
    if setup_cpu_distributed(cfg):
        print_log('No GPU found: distributed testing runs on CPU with '
                  f"{cfg.env_cfg.dist_cfg.backend}.", logger='current')
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)

    dump_preds = args.out is not None and args.out_item in ('pred', None)
    if dump_preds:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    # Loading errors (a checkpoint that does not fit) name the file.
    with checkpoint_source(args.checkpoint):
        metrics = runner.test()
    if args.out is not None and args.out_item == 'metrics':
        mmengine.dump(metrics, args.out)
    shutdown_distributed()
    return metrics


if __name__ == '__main__':
    sys.exit(run_tool(main, 'test.py'))
