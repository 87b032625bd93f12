"""Train a model from a config with the mmengine Runner.

This is vapt_mm's counterpart of mmpretrain's ``tools/train.py`` with the
same command line, plus:

* ``--amp`` picks the right optimizer wrapper for the device
  (``vapt_mm.engine.optim.amp_optim_wrapper_cfg``: mmengine's
  ``AmpOptimWrapper`` on GPU, a bf16 CPU wrapper on CPU) and
  ``--amp-dtype`` chooses float16 or bfloat16.
* ``persistent_workers`` is only defaulted to True for dataloaders that have
  worker processes (``num_workers > 0``); torch refuses it otherwise.
* ``--launcher pytorch|slurm|mpi`` also works on machines without a GPU: the
  process group is created with gloo and DDP gets ``device_ids=None``
  (see ``vapt_mm.engine.dist_cpu``).
* Before the Runner starts, a preflight checks the data, the head and the
  pretrained file (``vapt_mm.engine.preflight``); errors a user can fix
  are printed as a short message without a traceback (exit code 1; the
  traceback with ``--debug`` or ``VAPT_MM_DEBUG=1``). See docs/errors.md.

Example:
    Single process::

        python tools/train.py configs/vapt/vit-b16_vtab-eurosat.py

    Two processes (GPUs, or CPU processes with gloo)::

        bash tools/dist_train.sh configs/vapt/vit-b16_vtab-eurosat.py 2
"""
import argparse
import logging
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from vapt_mm.apis.prompt_file import is_prompt_file
from vapt_mm.engine.auto_resume import resolve_auto_resume
from vapt_mm.engine.dist_cpu import is_cpu_only, setup_cpu_distributed
from vapt_mm.engine.dist_shutdown import shutdown_distributed
from vapt_mm.engine.preflight import load_config, preflight_train
from vapt_mm.utils.user_errors import (ConfigError, ConfigKeyError,
                                       add_debug_argument, errors_doc,
                                       run_tool, user_message)

DATALOADER_FIELDS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments without the program name.
            Defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The parsed arguments.

    Example:
        >>> parse_args(['my_config.py', '--resume']).resume
        'auto'
    """
    parser = argparse.ArgumentParser(
        description='Train a (prompt-tuned) classifier with mmengine')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, resume from the '
        'latest checkpoint in the work directory (if there is one)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic mixed precision (GPU: float16 by default, '
        'CPU: bfloat16)')
    parser.add_argument(
        '--amp-dtype',
        choices=['float16', 'bfloat16'],
        default=None,
        help='autocast dtype for --amp; defaults to `optim_wrapper.dtype` of '
        'the config, else the device default')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate on the validation set during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (total batch size) / '
        '`auto_scale_lr.base_batch_size`')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable the pin_memory option in dataloaders')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable the persistent_workers option in dataloaders')
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
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def set_dataloader_defaults(cfg: Config,
                            field: str,
                            pin_memory: bool = True,
                            persistent_workers: bool = True) -> None:
    """Fill the dataloader options the config left out.

    ``persistent_workers`` defaults to True only when the loader has worker
    processes; an explicit ``persistent_workers=True`` with
    ``num_workers=0`` is turned off with a warning (torch would refuse it).

    Args:
        cfg (Config): The run config, modified in place.
        field (str): ``'train_dataloader'``, ``'val_dataloader'`` or
            ``'test_dataloader'``.
        pin_memory (bool): Default for ``pin_memory``; False forces it off.
        persistent_workers (bool): Default for ``persistent_workers``; False
            forces it off.

    Example:
        >>> cfg = Config(dict(train_dataloader=dict(num_workers=2),
        ...                   val_dataloader=dict(num_workers=0)))
        >>> set_dataloader_defaults(cfg, 'train_dataloader')
        >>> set_dataloader_defaults(cfg, 'val_dataloader')
        >>> cfg.train_dataloader.persistent_workers
        True
        >>> 'persistent_workers' in cfg.val_dataloader
        False
    """
    loader = cfg.get(field, None)
    if loader is None:
        return
    loader.setdefault('collate_fn', dict(type='default_collate'))
    if not pin_memory:
        loader['pin_memory'] = False
    else:
        loader.setdefault('pin_memory', True)
    num_workers = loader.get('num_workers', 0)
    if not persistent_workers:
        loader['persistent_workers'] = False
    elif num_workers > 0:
        loader.setdefault('persistent_workers', True)
    elif loader.get('persistent_workers', False):
        # torch refuses persistent workers without workers; a config that
        # sets both (e.g. num_workers=0 from --cfg-options) means "no
        # workers", so drop the option instead of failing.
        print_log(
            f'{field}.persistent_workers=True has no effect with '
            f'{field}.num_workers={num_workers}; setting it to False.',
            logger='current',
            level=logging.WARNING)
        loader['persistent_workers'] = False


def apply_amp(cfg: Config, dtype: Optional[str]) -> None:
    """Switch ``cfg.optim_wrapper`` to automatic mixed precision.

    Args:
        cfg (Config): The run config, modified in place.
        dtype (str, optional): ``'float16'`` or ``'bfloat16'``; None takes
            ``optim_wrapper.dtype`` from the config or the device default.

    Example:
        >>> cfg = Config(dict(optim_wrapper=dict(
        ...     optimizer=dict(type='SGD', lr=0.1))))
        >>> apply_amp(cfg, None)
        >>> cfg.optim_wrapper.type  # on a CPU-only machine
        'CPUAmpOptimWrapper'
    """
    try:
        from vapt_mm.engine.optim import amp_optim_wrapper_cfg
    except ImportError as err:
        raise ImportError(
            '--amp needs vapt_mm.engine.optim.amp_optim_wrapper_cfg, which '
            f'could not be imported: {err}') from err
    if dtype is None:
        dtype = cfg.optim_wrapper.get('dtype', None)
    cfg.optim_wrapper = amp_optim_wrapper_cfg(cfg.optim_wrapper, dtype)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command line into the config.

    As in mmpretrain's tool, flags are merged first and ``--cfg-options``
    after them (so it may override them). ``--amp`` comes next, so it
    switches the final ``optim_wrapper``, and the dataloader defaults are
    filled last, so they see the final ``num_workers``.

    Args:
        cfg (Config): The loaded config.
        args (argparse.Namespace): The parsed command line.

    Returns:
        Config: The same config object, updated.

    Example:
        >>> args = parse_args(['configs/vapt/vit-b16_vtab-eurosat.py',
        ...                    '--resume'])
        >>> cfg = merge_args(Config.fromfile(args.config), args)
        >>> cfg.resume, cfg.load_from, cfg.work_dir
        (True, None, './work_dirs/vit-b16_vtab-eurosat')
    """
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir priority: command line > config > config file name
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if is_prompt_file(args.resume):
            raise ConfigError(
                user_message(
                    f'--resume {args.resume}: a prompt file holds the '
                    'trained weights only, not the epoch, optimizer and '
                    'schedule state a resumed run continues from.',
                    fix='resume from a Runner checkpoint (epoch_N.pth), or '
                    f'start a new run from the prompt file with '
                    f'--cfg-options load_from={args.resume}',
                    docs='docs/training.md#resume'))
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if cfg.get('auto_scale_lr', None) is None:
            raise ConfigKeyError(
                f'--auto-scale-lr needs `auto_scale_lr = dict('
                f'base_batch_size=...)` in the config {args.config}, which '
                f'has none (see {errors_doc("config-values")}).')
        cfg.auto_scale_lr.enable = True

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.amp:
        if cfg.get('optim_wrapper', None) is None:
            raise ConfigKeyError(
                f'--amp needs `optim_wrapper` in the config {args.config}, '
                f'which has none (see {errors_doc("config-values")}).')
        apply_amp(cfg, args.amp_dtype)

    # pin_memory only helps host-to-accelerator copies.
    pin_memory = not args.no_pin_memory and not is_cpu_only()
    for field in DATALOADER_FIELDS:
        set_dataloader_defaults(
            cfg,
            field,
            pin_memory=pin_memory,
            persistent_workers=not args.no_persistent_workers)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the Runner (or the registered ``runner_type``) from a config.

    Args:
        cfg (Config): The merged run config.

    Returns:
        Runner: The runner.

    Example:
        >>> runner = build_runner(merge_args(cfg, args))  # doctest: +SKIP
        >>> runner.train()  # doctest: +SKIP
    """
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv: Optional[List[str]] = None) -> None:
    """Load the config, merge the command line, run the preflight, train.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Example:
        >>> main(['configs/vapt/vit-b16_vtab-eurosat.py',
        ...       '--work-dir', 'work_dirs/try'])  # doctest: +SKIP
    """
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = merge_args(cfg, args)
    preflight_train(cfg)
    # --resume without a path: the newest readable checkpoint
    resolve_auto_resume(cfg)
    if setup_cpu_distributed(cfg):
        print_log('No GPU found: distributed training runs on CPU with '
                  f"{cfg.env_cfg.dist_cfg.backend}.", logger='current')
    runner = build_runner(cfg)
    runner.train()
    shutdown_distributed()


if __name__ == '__main__':
    sys.exit(run_tool(main, 'train.py'))
