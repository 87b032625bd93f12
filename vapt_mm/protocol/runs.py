"""The runs of a sweep: where they live, what they override, how they start.

Every run is one ``tools/train.py`` process in its own work dir::

    <work_dir>/<task>/grid/lr<base_lr>_wd<wd>/   grid search (train -> val)
    <work_dir>/<task>/final/seed<seed>/          seed runs (trainval -> test)
    <work_dir>/<task>/sweep_summary.json

Example:
    >>> from vapt_mm.protocol.runs import RunSpec, grid_run
    >>> run = grid_run('work_dirs/vapt', 'eurosat', base_lr=2.5, wd=1e-4,
    ...                seed=42, batch_size=64, splits=('train800', 'val200'),
    ...                max_epochs=100)
    >>> run.name, run.lr
    ('eurosat/grid/lr2.5_wd0.0001', 0.625)
"""
import os.path as osp
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from .config_reader import option_key
from .hyperparameters import format_number, scaled_lr

__all__ = [
    'RunSpec', 'grid_run', 'final_run', 'task_options', 'run_options',
    'merge_options', 'train_command', 'eval_command', 'shell_join',
    'SWEEP_CONTROLLED', 'GRID', 'FINAL'
]

#: Phases of the protocol.
GRID, FINAL = 'grid', 'final'


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep.

    Args:
        task (str): Task name.
        phase (str): ``'grid'`` or ``'final'``.
        work_dir (str): The run's work dir (``tools/train.py --work-dir``).
        base_lr (float): Base learning rate (for a batch of 256).
        lr (float): The learning rate used: ``base_lr * batch / 256``.
        weight_decay (float): Weight decay.
        seed (int): ``randomness.seed``.
        train_split (str): Split trained on.
        eval_split (str): Split scored on (the run's validation set).
        max_epochs (int): Epochs; the validation after the last one is the
            run's score.
        cfg_options (tuple[str, ...]): Every ``key=value`` override of the
            run (user's, the task's and the run's own), in order.
    """

    task: str
    phase: str
    work_dir: str
    base_lr: float
    lr: float
    weight_decay: float
    seed: int
    train_split: str
    eval_split: str
    max_epochs: int
    cfg_options: Tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """``<task>/<phase>/<folder>``, unique within a sweep."""
        return '/'.join([self.task, self.phase, osp.basename(self.work_dir)])

    def identity(self) -> Dict[str, object]:
        """The fields that must match for a stored result to be reused."""
        return dict(
            task=self.task,
            phase=self.phase,
            base_lr=self.base_lr,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=self.seed,
            train_split=self.train_split,
            eval_split=self.eval_split,
            max_epochs=self.max_epochs)


def _task_dir(work_dir: str, task: str) -> str:
    return osp.join(work_dir, task)


def grid_run(work_dir: str, task: str, base_lr: float, wd: float, seed: int,
             batch_size: int, splits: Tuple[str, str], max_epochs: int,
             options: Sequence[str] = ()) -> RunSpec:
    """A grid-search run (cfg-options not filled in; see
    :func:`run_options`).

    Args:
        work_dir (str): Root work dir of the sweep.
        task (str): Task name.
        base_lr (float): Base learning rate.
        wd (float): Weight decay.
        seed (int): Seed of the grid runs.
        batch_size (int): Training batch size (scales the lr).
        splits (tuple[str, str]): (train, eval) splits.
        max_epochs (int): Epochs per run.
        options (Sequence[str]): Full ``key=value`` overrides of the run.

    Returns:
        RunSpec: The run.
    """
    folder = f'lr{format_number(base_lr)}_wd{format_number(wd)}'
    return RunSpec(
        task=task,
        phase=GRID,
        work_dir=osp.join(_task_dir(work_dir, task), GRID, folder),
        base_lr=float(base_lr),
        lr=scaled_lr(base_lr, batch_size),
        weight_decay=float(wd),
        seed=int(seed),
        train_split=splits[0],
        eval_split=splits[1],
        max_epochs=max_epochs,
        cfg_options=tuple(options))


def final_run(work_dir: str, task: str, base_lr: float, wd: float, seed: int,
              batch_size: int, splits: Tuple[str, str], max_epochs: int,
              options: Sequence[str] = ()) -> RunSpec:
    """A seed run with the chosen pair (arguments as :func:`grid_run`).

    Returns:
        RunSpec: The run.
    """
    return RunSpec(
        task=task,
        phase=FINAL,
        work_dir=osp.join(_task_dir(work_dir, task), FINAL, f'seed{seed}'),
        base_lr=float(base_lr),
        lr=scaled_lr(base_lr, batch_size),
        weight_decay=float(wd),
        seed=int(seed),
        train_split=splits[0],
        eval_split=splits[1],
        max_epochs=max_epochs,
        cfg_options=tuple(options))


def task_options(task_key: str, task: str, num_classes: int,
                 has_test_dataloader: bool) -> List[str]:
    """Overrides that point a config template at one task.

    Args:
        task_key (str): Dataset argument naming the task (``task``).
        task (str): Task name.
        num_classes (int): Its class count (goes to ``model.head``).
        has_test_dataloader (bool): Whether to set the test loader too.

    Returns:
        list[str]: ``key=value`` items.

    Example:
        >>> task_options('task', 'dtd', 47, False)
        ['train_dataloader.dataset.task=dtd', 'val_dataloader.dataset.task=dtd', 'model.head.num_classes=47']
    """
    loaders = ['train_dataloader', 'val_dataloader']
    if has_test_dataloader:
        loaders.append('test_dataloader')
    out = [f'{loader}.dataset.{task_key}={task}' for loader in loaders]
    out.append(f'model.head.num_classes={num_classes}')
    return out


#: Keys every run sets itself; a user option with one of these keys is
#: overridden.
SWEEP_CONTROLLED = ('train_dataloader.dataset.split',
                    'val_dataloader.dataset.split',
                    'test_dataloader.dataset.split',
                    'optim_wrapper.optimizer.lr',
                    'optim_wrapper.optimizer.weight_decay',
                    'auto_scale_lr.enable', 'randomness.seed',
                    'train_cfg.val_interval')


def run_options(lr: float, wd: float, seed: int, splits: Tuple[str, str],
                max_epochs: int, has_auto_scale_lr: bool,
                has_test_dataloader: bool) -> List[str]:
    """A run's own overrides.

    The learning rate is set already scaled and ``auto_scale_lr`` is turned
    off, so the Runner uses exactly ``lr``. Validation runs once, after the
    last epoch (``train_cfg.val_interval=max_epochs``): the protocol scores
    the last-epoch model. The test loader (if any) gets the eval split too,
    so ``tools/test.py`` on a run's checkpoint scores the same images.

    Args:
        lr (float): Scaled learning rate.
        wd (float): Weight decay.
        seed (int): Seed.
        splits (tuple[str, str]): (train, eval) splits.
        max_epochs (int): Epochs of the config.
        has_auto_scale_lr (bool): Whether the config has ``auto_scale_lr``.
        has_test_dataloader (bool): Whether it has a ``test_dataloader``.

    Returns:
        list[str]: ``key=value`` items.

    Example:
        >>> run_options(0.625, 0.0, 42, ('train800', 'val200'), 100, True,
        ...             False)[:2]
        ['train_dataloader.dataset.split=train800', 'val_dataloader.dataset.split=val200']
    """
    out = [
        f'train_dataloader.dataset.split={splits[0]}',
        f'val_dataloader.dataset.split={splits[1]}',
    ]
    if has_test_dataloader:
        out.append(f'test_dataloader.dataset.split={splits[1]}')
    out += [
        f'optim_wrapper.optimizer.lr={lr!r}',
        f'optim_wrapper.optimizer.weight_decay={float(wd)!r}',
    ]
    if has_auto_scale_lr:
        out.append('auto_scale_lr.enable=False')
    out += [f'randomness.seed={seed}', f'train_cfg.val_interval={max_epochs}']
    return out


def merge_options(*groups: Sequence[str]) -> List[str]:
    """Concatenate option lists, a later key replacing an earlier one.

    Args:
        *groups (Sequence[str]): ``key=value`` lists, lowest priority first.

    Returns:
        list[str]: One item per key, in first-seen order.

    Example:
        >>> merge_options(['a=1', 'b=2'], ['a=3'])
        ['a=3', 'b=2']
    """
    merged: Dict[str, str] = {}
    for group in groups:
        for option in group:
            merged[option_key(option)] = option
    return list(merged.values())


def train_command(python: str, train_script: str, config: str, run: RunSpec,
                  resume: bool, extra_args: Sequence[str] = ()) -> List[str]:
    """The ``tools/train.py`` command of a run.

    Args:
        python (str): Interpreter.
        train_script (str): Path of ``tools/train.py``.
        config (str): Config file.
        run (RunSpec): The run.
        resume (bool): Add ``--resume auto`` (continue from the latest
            checkpoint of the work dir).
        extra_args (Sequence[str]): More ``tools/train.py`` arguments
            (e.g. ``--amp``).

    Returns:
        list[str]: The argv.

    Example:
        >>> run = grid_run('w', 'dtd', 1.0, 0.0, 42, 64, ('a', 'b'), 10)
        >>> ' '.join(train_command('python', 'tools/train.py', 'c.py', run,
        ...                        resume=True))
        'python tools/train.py c.py --work-dir w/dtd/grid/lr1_wd0 --resume auto'
    """
    cmd = [python, train_script, config, '--work-dir', run.work_dir]
    if resume:
        cmd += ['--resume', 'auto']
    cmd += list(extra_args)
    if run.cfg_options:
        cmd += ['--cfg-options', *run.cfg_options]
    return cmd


def eval_command(python: str, test_script: str, config: str, run: RunSpec,
                 checkpoint: str, metrics_file: str) -> List[str]:
    """The ``tools/test.py`` command that scores a run's last checkpoint.

    Used when a run trained all epochs but its final validation is missing
    (stopped during it, then resumed with nothing left to train).

    Args:
        python (str): Interpreter.
        test_script (str): Path of ``tools/test.py``.
        config (str): Config file.
        run (RunSpec): The run (its options point the test loader at the
            eval split).
        checkpoint (str): Checkpoint to score.
        metrics_file (str): JSON file the metrics are written to.

    Returns:
        list[str]: The argv.
    """
    cmd = [
        python, test_script, config, checkpoint, '--work-dir', run.work_dir,
        '--out', metrics_file, '--out-item', 'metrics'
    ]
    if run.cfg_options:
        cmd += ['--cfg-options', *run.cfg_options]
    return cmd


def shell_join(cmd: Sequence[str]) -> str:
    """Quote an argv for a shell.

    Example:
        >>> shell_join(['echo', 'a b'])
        "echo 'a b'"
    """
    return shlex.join(list(cmd))
