"""The VTAB-1k protocol as one object: plan, run (or script), summarise.

For each task: train every (base lr, weight decay) pair of the grid on the
grid train split and score it on the grid eval split (VTAB-1k: train800 ->
val200), keep the best pair (:func:`~.protocol.select_best`), then train
one run per seed with that pair on the final splits (train800val200 ->
test). Runs whose score is already on disk are read back, not rerun; runs
with a checkpoint are resumed.

Example:
    >>> from vapt_mm.protocol import Sweep
    >>> sweep = Sweep('configs/vapt/vit-b16_vtab-eurosat.py',
    ...               'work_dirs/sweep_vapt', tasks=['eurosat', 'dtd'],
    ...               train_script='tools/train.py',
    ...               test_script='tools/test.py')
    >>> sweep.dry_run()        # prints the runs   # doctest: +SKIP
    >>> ok = sweep.run_local(num_slots=1)          # doctest: +SKIP
"""
import logging
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log

from vapt_mm.utils.user_errors import ConfigError, ConfigKeyError
from .suites import expand_tasks
from .config_reader import SweepConfigInfo, read_sweep_config
from .executor import Job, run_jobs
from .hyperparameters import (DEFAULT_BASE_LRS, DEFAULT_SEEDS,
                              DEFAULT_WEIGHT_DECAYS, check_grid_values,
                              check_seeds, format_number, scaled_lr,
                              select_best)
from .run_state import (DEFAULT_METRIC, DIVERGED_FILE, EVAL_METRICS_FILE,
                        TRAIN_LOG,
                        RunStatus, run_status)
from .runs import (FINAL, GRID, SWEEP_CONTROLLED, RunSpec, eval_command,
                   final_run, grid_run, merge_options, run_options,
                   shell_join, task_options, train_command)
from .slurm import write_slurm_array
from .suites import expand_tasks
from .summary import build_summary, count_model, write_summary

__all__ = ['Sweep', 'TaskPlan', 'TaskSource']


class TaskSource(NamedTuple):
    """The config a task's runs use.

    Args:
        config (str): Config file.
        info (SweepConfigInfo): What the sweep read from it.
        template (bool): Whether the config is a template pointed at the
            task by the sweep (``--tasks``), rather than the task's own
            config.
    """

    config: str
    info: SweepConfigInfo
    template: bool


class TaskPlan(NamedTuple):
    """The runs of one task and where each stands.

    Args:
        task (str): Task name.
        grid (list[tuple[RunSpec, RunStatus]]): Grid runs.
        best (tuple[float, float], optional): The chosen (base lr, wd),
            once every grid run has a score.
        final (list[tuple[RunSpec, RunStatus]]): Seed runs (empty until
            ``best`` is known).
    """

    task: str
    grid: List[Tuple[RunSpec, RunStatus]]
    best: Optional[Tuple[float, float]]
    final: List[Tuple[RunSpec, RunStatus]]

    @property
    def grid_complete(self) -> bool:
        """Whether every grid run has its score."""
        return all(s.state == 'done' for _, s in self.grid)

    @property
    def complete(self) -> bool:
        """Whether every run of the task has its score."""
        return (self.best is not None and self.grid_complete
                and all(s.state == 'done' for _, s in self.final))


def _log(msg: str, level: int = logging.INFO) -> None:
    print_log(msg, logger='current', level=level)


class Sweep:
    """Grid search and seed runs of a method over one or more tasks.

    Args:
        configs (str | Sequence[str]): Training config(s). Without ``tasks``
            each config is one method on the task its training dataset
            names (one config per task, e.g. the per-task configs under
            ``configs/vapt/``); with ``tasks`` there must be exactly one,
            used as a template whose dataloaders and
            ``model.head.num_classes`` are pointed at each task.
        work_dir (str): Root of the sweep's work dirs.
        train_script (str): Path of ``tools/train.py``.
        test_script (str): Path of ``tools/test.py`` (scores a run whose
            final validation is missing).
        tasks (Sequence[str], optional): Task names, group names
            (``natural``, ``specialized``, ``structured``) or ``all``.
        base_lrs (Sequence[float]): Base learning rates of the grid (for a
            batch of 256). Defaults to the published grid.
        weight_decays (Sequence[float]): Weight decays of the grid.
            Defaults to the published grid.
        seeds (Sequence[int]): Seeds of the final runs. Defaults to
            ``(42, 44, 82, 100, 800)``.
        grid_seed (int, optional): Seed of the grid runs. Defaults to the
            first of ``seeds``.
        cfg_options (Sequence[str]): ``key=value`` overrides for every run
            (e.g. the data root or the backbone checkpoint).
        metric (str): Metric that scores a run. Defaults to
            ``'accuracy/top1'``.
        python (str): Interpreter of the runs. Defaults to this one.
        train_args (Sequence[str]): More ``tools/train.py`` arguments, e.g.
            ``['--amp']``.

    Example:
        >>> sweep = Sweep('configs/vapt/vit-b16_vtab-eurosat.py', 'w',
        ...               train_script='tools/train.py',
        ...               test_script='tools/test.py', tasks=['natural'],
        ...               base_lrs=[2.5], weight_decays=[0.0])
        >>> sweep.tasks[:2], sweep.grid_runs('dtd')[0].lr
        (['cifar', 'caltech101'], 0.625)
    """

    def __init__(self,
                 configs: Union[str, Sequence[str]],
                 work_dir: str,
                 train_script: str,
                 test_script: str,
                 tasks: Optional[Sequence[str]] = None,
                 base_lrs: Sequence[float] = DEFAULT_BASE_LRS,
                 weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
                 seeds: Sequence[int] = DEFAULT_SEEDS,
                 grid_seed: Optional[int] = None,
                 cfg_options: Sequence[str] = (),
                 metric: str = DEFAULT_METRIC,
                 python: str = sys.executable,
                 train_args: Sequence[str] = ()) -> None:
        self.work_dir = work_dir
        self.train_script = train_script
        self.test_script = test_script
        self.base_lrs = check_grid_values('--lrs', base_lrs, allow_zero=False)
        self.weight_decays = check_grid_values(
            '--wds', weight_decays, allow_zero=True)
        self.seeds = check_seeds(seeds)
        self.grid_seed = self.seeds[0] if grid_seed is None else grid_seed
        check_seeds([self.grid_seed])
        self.metric = metric
        self.python = python
        self.train_args = list(train_args)
        self.user_options = merge_options(cfg_options)
        overridden = [o for o in self.user_options
                      if o.split('=', 1)[0] in SWEEP_CONTROLLED]
        if overridden:
            _log(
                'These --cfg-options are set by the sweep for every run '
                f'and are ignored: {overridden}', logging.WARNING)
        self.sources = self._task_sources(
            [configs] if isinstance(configs, str) else list(configs), tasks)
        self.tasks = list(self.sources)

    def _task_sources(self, configs: List[str],
                      tasks: Optional[Sequence[str]]) -> Dict[str, TaskSource]:
        if not configs:
            raise ConfigError('Give at least one config.')
        if tasks:
            if len(configs) != 1:
                raise ConfigError(
                    f'--tasks uses one config as a template for every task; '
                    f'got {len(configs)} configs. Give one template config '
                    'with --tasks, or one config per task without it.')
            info = read_sweep_config(configs[0], self.user_options)
            return {
                task: TaskSource(configs[0], info, True)
                for task in expand_tasks(info.suite, tasks)
            }
        sources: Dict[str, TaskSource] = {}
        for config in configs:
            info = read_sweep_config(config, self.user_options)
            spec = info.suite
            if info.task not in spec.tasks:
                raise ConfigError(
                    f'{config}: train_dataloader.dataset.{spec.task_key}='
                    f'{info.task!r} is not a {spec.dataset_type} task '
                    f'({list(spec.tasks)}).')
            if info.task in sources:
                raise ConfigError(
                    f'{sources[info.task].config} and {config} both train '
                    f'task {info.task!r}; a sweep work dir holds one config '
                    'per task (use another --work-dir for the other).')
            sources[info.task] = TaskSource(config, info, False)
        methods = sorted({source.info.method for source in sources.values()})
        if len(methods) > 1:
            _log(
                f'The configs hold different methods ({methods}); the '
                'results table reads one work dir per method.',
                logging.WARNING)

        def order(task: str) -> tuple:
            spec = sources[task].info.suite
            return spec.name != 'vtab1k', spec.tasks.index(task)

        return {task: sources[task] for task in sorted(sources, key=order)}

    # ------------------------------------------------------------------
    # planning
    # ------------------------------------------------------------------
    def task_options(self, task: str) -> List[str]:
        """The user's options plus, in template mode, the task's.

        Args:
            task (str): Task name.

        Returns:
            list[str]: ``key=value`` items shared by the task's runs.
        """
        opts = list(self.user_options)
        source = self.sources[task]
        if source.template:
            spec = source.info.suite
            opts = merge_options(
                opts,
                task_options(spec.task_key, task, spec.num_classes[task],
                             source.info.has_test_dataloader))
        return opts

    def _options(self, task: str, lr: float, wd: float, seed: int,
                 splits: Tuple[str, str]) -> List[str]:
        info = self.sources[task].info
        own = run_options(lr, wd, seed, splits, info.max_epochs,
                          info.has_auto_scale_lr, info.has_test_dataloader)
        return merge_options(self.task_options(task), own)

    def grid_runs(self, task: str) -> List[RunSpec]:
        """The grid runs of a task, lr-major in the order given.

        Args:
            task (str): Task name.

        Returns:
            list[RunSpec]: The runs.
        """
        info = self.sources[task].info
        splits = info.suite.grid_splits
        runs = []
        for base_lr in self.base_lrs:
            for wd in self.weight_decays:
                lr = scaled_lr(base_lr, info.batch_size)
                runs.append(
                    grid_run(
                        self.work_dir, task, base_lr, wd, self.grid_seed,
                        info.batch_size, splits, info.max_epochs,
                        self._options(task, lr, wd, self.grid_seed,
                                      splits)))
        return runs

    def final_runs(self, task: str,
                   best: Tuple[float, float]) -> List[RunSpec]:
        """The seed runs of a task with the chosen pair.

        Args:
            task (str): Task name.
            best (tuple[float, float]): (base lr, weight decay).

        Returns:
            list[RunSpec]: One run per seed.
        """
        info = self.sources[task].info
        splits = info.suite.final_splits
        lr = scaled_lr(best[0], info.batch_size)
        return [
            final_run(self.work_dir, task, best[0], best[1], seed,
                      info.batch_size, splits, info.max_epochs,
                      self._options(task, lr, best[1], seed, splits))
            for seed in self.seeds
        ]

    def plan_task(self, task: str, record: bool = True) -> TaskPlan:
        """Read where every run of a task stands.

        Args:
            task (str): Task name.
            record (bool): Write ``sweep_result.json`` for runs found
                finished in mmengine's files. Defaults to True.

        Returns:
            TaskPlan: The plan.
        """
        grid = [(run, run_status(run, self.metric, record))
                for run in self.grid_runs(task)]
        best, final = None, []
        if all(s.state == 'done' for _, s in grid):
            best = select_best({(r.base_lr, r.weight_decay): s.score
                                for r, s in grid})
            final = [(run, run_status(run, self.metric, record))
                     for run in self.final_runs(task, best)]
        return TaskPlan(task, grid, best, final)

    def plan(self, record: bool = True) -> Dict[str, TaskPlan]:
        """:meth:`plan_task` for every task."""
        return {task: self.plan_task(task, record) for task in self.tasks}

    # ------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------
    def train_cmd(self, run: RunSpec, resume: bool) -> List[str]:
        """The ``tools/train.py`` argv of a run."""
        return train_command(self.python, self.train_script,
                             self.sources[run.task].config, run, resume,
                             self.train_args)

    def eval_cmd(self, run: RunSpec, checkpoint: str) -> List[str]:
        """The ``tools/test.py`` argv that scores a run's checkpoint."""
        source = self.sources[run.task]
        if not source.info.has_test_dataloader:
            raise ConfigKeyError(
                f'{run.name} trained all {run.max_epochs} epochs but has no '
                f'final validation score, and {source.config} has no '
                'test_dataloader to score its checkpoint with tools/test.py.')
        return eval_command(self.python, self.test_script, source.config, run,
                            checkpoint,
                            osp.join(run.work_dir, EVAL_METRICS_FILE))

    def command_for(self, run: RunSpec, status: RunStatus,
                    always_resume: bool = False) -> List[str]:
        """The command that brings a run forward from ``status``.

        Args:
            run (RunSpec): The run.
            status (RunStatus): Its state (not ``done``).
            always_resume (bool): Pass ``--resume auto`` even to a new run
                (Slurm: a requeued job continues).

        Returns:
            list[str]: The argv.
        """
        if status.state == 'evaluate':
            return self.eval_cmd(run, status.checkpoint)
        return self.train_cmd(run, always_resume or status.state == 'resume')

    # ------------------------------------------------------------------
    # modes
    # ------------------------------------------------------------------
    def _describe(self, run: RunSpec, status: RunStatus) -> str:
        what = (f'base lr {format_number(run.base_lr)} -> lr '
                f'{format_number(run.lr)}, wd '
                f'{format_number(run.weight_decay)}, seed {run.seed}, '
                f'{run.train_split} -> {run.eval_split}')
        if status.state == 'done':
            return (f'{run.name}: {what}: done, {run.eval_split} top-1 '
                    f'{status.score:.2f}')
        return f'{run.name}: {what}: {status.state}'

    def dry_run(self) -> Dict[str, TaskPlan]:
        """Print every run and its state, and the command of each pending
        one; write nothing.

        Returns:
            dict[str, TaskPlan]: The plan per task.
        """
        plans = self.plan(record=False)
        _log(f'Sweep of {len(self.tasks)} task(s): {len(self.base_lrs)} lr '
             f'x {len(self.weight_decays)} wd grid, seeds '
             f'{list(self.seeds)}; work dir {self.work_dir}')
        for task, plan in plans.items():
            source = self.sources[task]
            info = source.info
            _log(f'[{task}] {source.config} '
                 f'({"template, " if source.template else ""}{info.method}, '
                 f'batch {info.batch_size}: lr = base_lr * '
                 f'{info.batch_size} / 256)')
            _log(f'[{task}] grid: {len(plan.grid)} runs on '
                 f'{"/".join(info.suite.grid_splits)}')
            for run, status in plan.grid:
                _log('  ' + self._describe(run, status))
                if status.state != 'done':
                    _log('    $ ' + shell_join(self.command_for(run, status)))
            if plan.best is None:
                _log(f'[{task}] seeds {list(self.seeds)} on '
                     f'{"/".join(info.suite.final_splits)}: planned '
                     'once the grid has finished')
                continue
            _log(f'[{task}] best pair: base lr {format_number(plan.best[0])}'
                 f', wd {format_number(plan.best[1])}')
            for run, status in plan.final:
                _log('  ' + self._describe(run, status))
                if status.state != 'done':
                    _log('    $ ' + shell_join(self.command_for(run, status)))
        return plans

    def run_local(self, num_slots: int = 1) -> bool:
        """Run the pending runs here: the grid of every task, then the seed
        runs of every task whose grid finished; then write the summaries.

        Args:
            num_slots (int): Runs at a time (``--gpus``). Defaults to 1.

        Returns:
            bool: Whether every task is complete.
        """
        failed: Dict[str, str] = {}
        for phase in (GRID, FINAL):
            plans = self.plan()
            pending: List[Tuple[RunSpec, RunStatus]] = []
            for task, plan in plans.items():
                if phase == FINAL and plan.best is None:
                    _log(f'[{task}] no seed runs: the grid is incomplete',
                         logging.WARNING)
                    continue
                runs = plan.grid if phase == GRID else plan.final
                for run, status in runs:
                    if status.state == 'done':
                        _log(f'skipped {self._describe(run, status)} (read '
                             'back, not rerun)')
                    else:
                        pending.append((run, status))
                if phase == FINAL:
                    _log(f'[{task}] best pair: base lr '
                         f'{format_number(plan.best[0])}, wd '
                         f'{format_number(plan.best[1])}')
            self._execute(pending, num_slots, failed)
        plans = self.plan()
        self.write_summaries(plans)
        for name, why in failed.items():
            _log(f'FAILED {name}: {why}', logging.ERROR)
        return all(plan.complete for plan in plans.values())

    def _execute(self, pending: List[Tuple[RunSpec, RunStatus]],
                 num_slots: int, failed: Dict[str, str]) -> None:
        if not pending:
            return
        runs = {run.name: run for run, _ in pending}
        evaluated = set()
        jobs = []
        for run, status in pending:
            if status.state == 'evaluate':
                evaluated.add(run.name)
            jobs.append(
                Job(run.name, self.command_for(run, status),
                    osp.join(run.work_dir, TRAIN_LOG)))

        def on_start(job: Job, slot: int) -> None:
            action = ('evaluating' if job.cmd[1] == self.test_script else
                      'resuming' if '--resume' in job.cmd else 'training')
            _log(f'{action} {job.key} (slot {slot}); log: {job.log_file}')

        def on_finish(job: Job, code: int) -> Optional[Job]:
            run = runs[job.key]
            if code != 0 and osp.isfile(osp.join(run.work_dir,
                                                 DIVERGED_FILE)):
                status = run_status(run, self.metric)
                _log(f'{run.name} diverged (FiniteLossHook stopped it): '
                     f'recorded as finished with score {status.score:.2f}; '
                     f'see {job.log_file}', logging.WARNING)
                return None
            if code != 0:
                failed[run.name] = (f'exit code {code}; see {job.log_file}'
                                    + _tail(job.log_file))
                _log(f'{run.name} failed with exit code {code}; see '
                     f'{job.log_file}', logging.ERROR)
                return None
            try:
                status = run_status(run, self.metric)
            except (KeyError, ValueError) as err:
                failed[run.name] = str(err)
                return None
            if status.state == 'done':
                _log(f'finished {self._describe(run, status)}')
                return None
            if status.state == 'evaluate' and run.name not in evaluated:
                evaluated.add(run.name)
                return Job(run.name, self.eval_cmd(run, status.checkpoint),
                           job.log_file)
            failed[run.name] = (
                f'the process ended normally but no final {self.metric} '
                f'(step {run.max_epochs}) was found in '
                f'{run.work_dir}/<timestamp>/vis_data/scalars.json; see '
                f'{job.log_file}')
            return None

        run_jobs(jobs, num_slots, on_finish, on_start)

    def write_slurm(self, **slurm_kwargs) -> Optional[str]:
        """Write a Slurm array of every run that can start now.

        That is every unfinished grid run, and the seed runs of tasks whose
        grid has finished. Runs are started with ``--resume auto`` so a
        requeued job continues. Without pending runs, writes the summaries
        instead.

        Args:
            **slurm_kwargs: Options of
                :func:`~vapt_mm.protocol.slurm.write_slurm_array`.

        Returns:
            str or None: The script path, None if nothing is left to run.
        """
        plans = self.plan()
        entries = []
        waiting = []
        for task, plan in plans.items():
            for run, status in plan.grid + plan.final:
                if status.state != 'done':
                    entries.append(
                        (run.name,
                         shell_join(
                             self.command_for(run, status,
                                              always_resume=True))))
            if plan.best is None:
                waiting.append(task)
        self.write_summaries(plans)
        if not entries:
            _log('Every run has its score; the summaries are written '
                 f'({self.work_dir}/<task>/sweep_summary.json).')
            return None
        script, run_list = write_slurm_array(self.work_dir, entries,
                                             **slurm_kwargs)
        _log(f'Wrote the Slurm array script {script} ({len(entries)} runs, '
             f'commands in {run_list}). Submit it with:\n'
             f'    sbatch {script}')
        if waiting:
            _log('When the array has finished, run this same tools/sweep.py '
                 'command again (with --slurm): it reads the grid scores, '
                 'picks the best pair of each task and writes the array of '
                 f'the seed runs (tasks {waiting}). After that one, run it '
                 'once more to collect the summaries.')
        else:
            _log('When the array has finished, run this same tools/sweep.py '
                 'command again to collect the summaries.')
        return script

    # ------------------------------------------------------------------
    # summaries
    # ------------------------------------------------------------------
    def write_summaries(self, plans: Dict[str, TaskPlan]) -> Dict[str, str]:
        """Write ``<work_dir>/<task>/sweep_summary.json`` for every task
        with at least one score.

        Args:
            plans (dict[str, TaskPlan]): Output of :meth:`plan`.

        Returns:
            dict[str, str]: Task to the written file.
        """
        written = {}
        for task, plan in plans.items():
            if not any(s.state == 'done' for _, s in plan.grid):
                continue
            source = self.sources[task]
            spec = source.info.suite
            try:
                params = count_model(source.config, self.task_options(task))
            except Exception as err:  # counting is informative only
                _log(f'[{task}] could not count the model parameters '
                     f'({type(err).__name__}: {err}); the summary has '
                     'params=null.', logging.WARNING)
                params = None
            summary = build_summary(
                task=task,
                benchmark=spec.name,
                group=spec.task_group.get(task),
                method=source.info.method,
                config=source.config,
                batch_size=source.info.batch_size,
                max_epochs=source.info.max_epochs,
                metric=self.metric,
                grid=[(r, s.state, s.score) for r, s in plan.grid],
                best=plan.best,
                final=[(r, s.state, s.score) for r, s in plan.final],
                seeds=self.seeds,
                params=params)
            written[task] = write_summary(
                osp.join(self.work_dir, task), summary)
            if summary['complete']:
                _log(f'[{task}] test top-1 {summary["test_top1_mean"]:.2f} '
                     f'+- {summary["test_top1_std"]:.2f} over '
                     f'{len(summary["test_top1"])} seeds -> {written[task]}')
            else:
                _log(f'[{task}] incomplete summary -> {written[task]}')
        return written


def _tail(path: str, lines: int = 15) -> str:
    if not osp.isfile(path):
        return ''
    with open(path, encoding='utf-8', errors='replace') as f:
        tail = f.readlines()[-lines:]
    return '\n  | ' + '  | '.join(tail) if tail else ''
