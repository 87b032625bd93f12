"""Write a Slurm job array that runs a list of sweep commands.

Two files are written under ``<work_dir>/slurm/``: ``<name>.txt`` with one
shell command per line (array task ``i`` runs line ``i + 1``) and
``<name>.sh``, the ``sbatch`` script, whose comments name every run.

Example:
    >>> from vapt_mm.protocol.slurm import write_slurm_array
    >>> script, runs = write_slurm_array(
    ...     '/tmp/sweep', [('dtd/grid/lr1_wd0', 'python tools/train.py ...')],
    ...     job_name='vapt-sweep')
    >>> script.endswith('.sh'), runs.endswith('.txt')
    (True, True)
"""
import os
import os.path as osp
import shlex
import time
from typing import List, Optional, Sequence, Tuple

from vapt_mm.utils.atomic_io import atomic_write

__all__ = ['write_slurm_array']


def write_slurm_array(work_dir: str,
                      runs: Sequence[Tuple[str, str]],
                      job_name: str = 'vapt-sweep',
                      partition: Optional[str] = None,
                      gpus_per_run: int = 1,
                      cpus_per_run: int = 5,
                      max_parallel: Optional[int] = None,
                      extra_sbatch: Sequence[str] = (),
                      cwd: Optional[str] = None,
                      stamp: Optional[str] = None) -> Tuple[str, str]:
    """Write the command list and the array script.

    Args:
        work_dir (str): Sweep work dir; files go to ``<work_dir>/slurm``.
        runs (Sequence[tuple[str, str]]): (run name, shell command) pairs.
        job_name (str): ``--job-name``. Defaults to ``'vapt-sweep'``.
        partition (str, optional): ``--partition``.
        gpus_per_run (int): ``--gres=gpu:<n>`` (0: none). Defaults to 1.
        cpus_per_run (int): ``--cpus-per-task``. Defaults to 5.
        max_parallel (int, optional): Array throttle (``%n``).
        extra_sbatch (Sequence[str]): More ``#SBATCH`` options, e.g.
            ``['--time=12:00:00']``.
        cwd (str, optional): Folder the commands run in. Defaults to the
            current one.
        stamp (str, optional): File name stem; defaults to
            ``sweep_<YYYYmmdd_HHMMSS>``. An existing script is never
            overwritten: ``_1``, ``_2``, ... is appended instead.

    Returns:
        tuple[str, str]: (script path, command list path).
    """
    if not runs:
        raise ValueError('write_slurm_array: no runs to write.')
    for name, command in runs:
        if '\n' in command:
            raise ValueError(f'the command of run {name!r} spans several '
                             'lines; the array runs one line per task.')
    slurm_dir = osp.abspath(osp.join(work_dir, 'slurm'))
    os.makedirs(slurm_dir, exist_ok=True)
    base = stamp or time.strftime('sweep_%Y%m%d_%H%M%S')
    stem, n = base, 0
    while osp.exists(osp.join(slurm_dir, f'{stem}.sh')):
        n += 1  # never overwrite an earlier array (same second)
        stem = f'{base}_{n}'
    list_path = osp.join(slurm_dir, f'{stem}.txt')
    script_path = osp.join(slurm_dir, f'{stem}.sh')
    with atomic_write(list_path, 'w') as f:
        f.writelines(f'{command}\n' for _, command in runs)

    array = f'0-{len(runs) - 1}'
    if max_parallel:
        array += f'%{max_parallel}'
    header: List[str] = [
        '#!/usr/bin/env bash',
        f'#SBATCH --job-name={job_name}',
        f'#SBATCH --array={array}',
        '#SBATCH --ntasks=1',
        f'#SBATCH --cpus-per-task={cpus_per_run}',
        f'#SBATCH --output={slurm_dir}/{stem}_%A_%a.log',
    ]
    if partition:
        header.append(f'#SBATCH --partition={partition}')
    if gpus_per_run:
        header.append(f'#SBATCH --gres=gpu:{gpus_per_run}')
    header += [f'#SBATCH {opt}' for opt in extra_sbatch]
    lines = header + [
        '#',
        f'# Written by tools/sweep.py: {len(runs)} runs, one per array task.',
        '# Array task i runs line i + 1 of',
        f'#   {list_path}',
        '# Runs:',
    ]
    lines += [f'#   {i}: {name}' for i, (name, _) in enumerate(runs)]
    lines += [
        '',
        'set -euo pipefail',
        f'cd {shlex.quote(cwd or os.getcwd())}',
        f'export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-{cpus_per_run}}}',
        f'CMD=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(list_path)})',
        'echo "array task ${SLURM_ARRAY_TASK_ID}: ${CMD}"',
        'eval "${CMD}"',
        '',
    ]
    with atomic_write(script_path, 'w') as f:
        f.write('\n'.join(lines))
    os.chmod(script_path, 0o755)
    return script_path, list_path
