"""Run subprocesses a few at a time, each with its own device slot.

``num_slots=1`` runs the jobs one after another. With ``num_slots=N`` up to
N run at once; the job in slot ``i`` sees ``CUDA_VISIBLE_DEVICES`` set to
the i-th visible device (the i-th entry of an existing
``CUDA_VISIBLE_DEVICES``, else ``i``). On a machine without GPUs this just
means N processes; each then gets ``OMP_NUM_THREADS = cores // N`` unless
the variable is already set.

Example:
    >>> from vapt_mm.protocol.executor import Job, run_jobs
    >>> jobs = [Job('a', ['python', '-c', 'print(1)'], '/tmp/a.log')]
    >>> run_jobs(jobs, num_slots=1, on_finish=lambda job, rc: None)
    {'a': 0}
"""
import os
import os.path as osp
import subprocess
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from vapt_mm.utils.user_errors import ConfigError

__all__ = ['Job', 'slot_devices', 'slot_env', 'run_jobs']


class Job(NamedTuple):
    """One subprocess.

    Args:
        key (str): Unique name (the run name).
        cmd (list[str]): The argv.
        log_file (str): stdout and stderr are appended here.
        cwd (str, optional): Working directory. Defaults to the current one.
    """

    key: str
    cmd: List[str]
    log_file: str
    cwd: Optional[str] = None


def slot_devices(num_slots: int,
                 visible: Optional[str] = None) -> List[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value of each slot.

    Args:
        num_slots (int): Number of slots.
        visible (str, optional): The current ``CUDA_VISIBLE_DEVICES``; its
            entries are handed out in order when there are enough of them.

    Returns:
        list[str]: One device id per slot.

    Example:
        >>> slot_devices(2), slot_devices(2, '4,5,6')
        (['0', '1'], ['4', '5'])
    """
    if not isinstance(num_slots, int) or num_slots < 1:
        raise ConfigError(f'--gpus must be a positive int, got {num_slots!r}.')
    listed = [d.strip() for d in (visible or '').split(',') if d.strip()]
    if visible and len(listed) < num_slots:
        raise ConfigError(
            f'--gpus {num_slots} but CUDA_VISIBLE_DEVICES={visible!r} lists '
            f'only {len(listed)} device(s).')
    return listed[:num_slots] if listed else [str(i) for i in range(num_slots)]


def slot_env(slot: int, num_slots: int, devices: Sequence[str],
             base_env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a job in ``slot``.

    Args:
        slot (int): Slot index.
        num_slots (int): Number of slots; with 1 the environment is left as
            it is.
        devices (Sequence[str]): Output of :func:`slot_devices`.
        base_env (dict, optional): Environment to start from. Defaults to
            ``os.environ``.

    Returns:
        dict[str, str]: The environment.
    """
    env = dict(os.environ if base_env is None else base_env)
    if num_slots > 1:
        env['CUDA_VISIBLE_DEVICES'] = devices[slot]
        env.setdefault('OMP_NUM_THREADS',
                       str(max(1, (os.cpu_count() or 1) // num_slots)))
    return env


def _start(job: Job, env: Dict[str, str]) -> subprocess.Popen:
    os.makedirs(osp.dirname(osp.abspath(job.log_file)), exist_ok=True)
    with open(job.log_file, 'a', encoding='utf-8') as log:
        log.write(f'\n$ {subprocess.list2cmdline(job.cmd)}\n')
        log.flush()
        return subprocess.Popen(
            job.cmd,
            cwd=job.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)


def run_jobs(jobs: Sequence[Job],
             num_slots: int,
             on_finish: Callable[[Job, int], Optional[Job]],
             on_start: Optional[Callable[[Job, int], None]] = None,
             poll_seconds: float = 0.2) -> Dict[str, int]:
    """Run jobs with at most ``num_slots`` at a time.

    Args:
        jobs (Sequence[Job]): The jobs, started in order.
        num_slots (int): Jobs run at once.
        on_finish (callable): Called as ``on_finish(job, returncode)`` when a
            job ends; may return a follow-up job, which is queued next.
        on_start (callable, optional): Called as ``on_start(job, slot)``.
        poll_seconds (float): Polling interval. Defaults to 0.2.

    Returns:
        dict[str, int]: Return code per job key (the last job of a key).

    Note:
        On KeyboardInterrupt the running jobs are terminated (they resume
        from their last checkpoint next time) and the interrupt re-raised.
    """
    devices = slot_devices(num_slots, os.environ.get('CUDA_VISIBLE_DEVICES')
                           if num_slots > 1 else None)
    queue = list(jobs)
    running: Dict[int, tuple] = {}
    codes: Dict[str, int] = {}
    try:
        while queue or running:
            for slot in range(num_slots):
                if slot not in running and queue:
                    job = queue.pop(0)
                    if on_start is not None:
                        on_start(job, slot)
                    proc = _start(job, slot_env(slot, num_slots, devices))
                    running[slot] = (job, proc)
            time.sleep(poll_seconds)
            for slot, (job, proc) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[slot]
                codes[job.key] = code
                follow_up = on_finish(job, code)
                if follow_up is not None:
                    queue.insert(0, follow_up)
    except BaseException:
        for job, proc in running.values():
            proc.terminate()
        for job, proc in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    return codes
