"""``--resume`` without a path: the newest checkpoint that can be read.

mmengine's Runner resumes from the file named in ``<work_dir>/last_checkpoint``
and fails on it when that file is truncated (a run killed while saving, with
a checkpoint hook that writes in place) or when the pointer names a file
that is gone. :func:`find_resumable_checkpoint` instead tries, newest
first, the file the pointer names and then every ``epoch_<n>.pth`` /
``iter_<n>.pth`` in the work dir (newest modification time first), skips
each damaged one with a warning naming it (see
:func:`vapt_mm.engine.checkpoint_integrity.checkpoint_file_problem`) and
returns the first sound one. :func:`resolve_auto_resume` applies that to a
config, so the Runner resumes from an explicit path.

Example:
    >>> cfg = Config.fromfile('configs/vapt/vit-b16_vtab-eurosat.py')
    >>> cfg.resume, cfg.load_from = True, None   # tools/train.py --resume
    >>> resolve_auto_resume(cfg)  # doctest: +SKIP
    >>> cfg.load_from  # doctest: +SKIP
    'work_dirs/vit-b16_vtab-eurosat/epoch_40.pth'
"""
import glob
import logging
import os.path as osp
import re
from typing import List, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from vapt_mm.utils.user_errors import CheckpointError, user_message
from .checkpoint_integrity import checkpoint_file_problem

__all__ = ['checkpoint_candidates', 'find_resumable_checkpoint',
           'resolve_auto_resume']

POINTER_FILE = 'last_checkpoint'
_RUNNER_CHECKPOINT = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def _read_pointer(work_dir: str) -> Optional[str]:
    """The path ``<work_dir>/last_checkpoint`` names, if it names a file."""
    pointer = osp.join(work_dir, POINTER_FILE)
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8', errors='replace') as f:
        written = f.read().strip()
    if not written:
        print_log(
            f'{pointer} is empty; looking for checkpoints in {work_dir}.',
            logger='current',
            level=logging.WARNING)
        return None
    if osp.isfile(written):
        return written
    # The path is written as the Runner saw it (maybe relative to another
    # working directory); the checkpoint usually sits in the work dir.
    beside = osp.join(work_dir, osp.basename(written))
    if osp.isfile(beside):
        return beside
    print_log(
        f'{pointer} names {written}, which does not exist; looking for '
        f'checkpoints in {work_dir}.',
        logger='current',
        level=logging.WARNING)
    return None


def checkpoint_candidates(work_dir: str) -> List[str]:
    """The checkpoints of a work dir, newest first.

    The file ``last_checkpoint`` names comes first (the Runner writes it
    after each save), then every ``epoch_<n>.pth`` and ``iter_<n>.pth`` in
    ``work_dir`` (and in the folder of the named file, if that is another
    one) from the newest modification time to the oldest (a number breaks
    ties). Modification times, not the numbers, order them, so the
    files of an older run left in the same folder come after this run's.
    Hidden temporary files of an interrupted atomic write are not
    checkpoints and are ignored.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        list[str]: Paths, newest first, without duplicates.

    Example:
        >>> checkpoint_candidates('work_dirs/run')  # doctest: +SKIP
        ['work_dirs/run/epoch_3.pth', 'work_dirs/run/epoch_2.pth']
    """
    pointed = _read_pointer(work_dir)
    folders = [work_dir]
    if pointed is not None and not osp.samefile(
            osp.dirname(osp.abspath(pointed)), work_dir):
        folders.append(osp.dirname(pointed))  # CheckpointHook(out_dir=...)
    found = []
    for folder in folders:
        for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
            match = _RUNNER_CHECKPOINT.match(osp.basename(path))
            if match and osp.isfile(path):
                found.append((osp.getmtime(path), int(match.group(2)), path))
    ordered = [path for _, _, path in sorted(found, reverse=True)]
    if pointed is None:
        return ordered
    return [pointed] + [p for p in ordered if not osp.samefile(p, pointed)]


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that is not damaged.

    Each candidate of :func:`checkpoint_candidates` is checked with
    :func:`~vapt_mm.engine.checkpoint_integrity.checkpoint_file_problem`
    (structure and CRCs, no unpickling); a damaged one is skipped with a
    warning that names it and what is wrong.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str or None: The checkpoint to resume from; None when the work dir
        holds no checkpoint at all (training starts from scratch).

    Raises:
        CheckpointError: If there are checkpoints but every one is damaged.

    Example:
        >>> find_resumable_checkpoint('work_dirs/run')  # doctest: +SKIP
        'work_dirs/run/epoch_2.pth'
    """
    candidates = checkpoint_candidates(work_dir)
    damaged = []
    for path in candidates:
        problem = checkpoint_file_problem(path)
        if problem is None:
            if damaged:
                print_log(
                    f'Resuming from {path}, the newest readable checkpoint.',
                    logger='current')
            return path
        damaged.append(path)
        print_log(
            f'Skipping the checkpoint {path} for --resume: it is unreadable '
            f'({problem}).',
            logger='current',
            level=logging.WARNING)
    if damaged:
        raise CheckpointError(
            user_message(
                f'--resume found {len(damaged)} checkpoint(s) and none is '
                'readable',
                where=', '.join(damaged),
                fix='delete the damaged files to train from scratch, or '
                'pass a sound checkpoint with --resume PATH',
                docs='docs/training.md#unreadable-checkpoints'))
    return None


def resolve_auto_resume(cfg: Config) -> None:
    """Point an automatic resume at the newest readable checkpoint.

    Acts only when ``cfg.resume`` is true and ``cfg.load_from`` is None
    (``tools/train.py --resume`` without a path): sets ``cfg.load_from`` to
    :func:`find_resumable_checkpoint` of ``cfg.work_dir``, or, when the
    work dir holds no checkpoint, sets ``cfg.resume = False`` and logs that
    training starts from scratch (what mmengine does too).

    Args:
        cfg (Config): The merged run config (``work_dir`` set); modified in
            place.

    Raises:
        CheckpointError: If every checkpoint in the work dir is damaged.

    Example:
        >>> cfg = Config(dict(resume=True, load_from=None,
        ...                   work_dir='/tmp/no_such_run'))
        >>> resolve_auto_resume(cfg)
        >>> cfg.resume
        False
    """
    if not cfg.get('resume', False) or cfg.get('load_from') is not None:
        return
    work_dir = cfg.get('work_dir')
    if work_dir is None:
        return
    found = find_resumable_checkpoint(work_dir)
    if found is None:
        print_log(
            f'--resume: no checkpoint in {work_dir}; training starts from '
            'scratch.',
            logger='current')
        cfg.resume = False
        return
    cfg.load_from = found
