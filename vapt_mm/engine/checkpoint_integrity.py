"""Tell a truncated or foreign checkpoint file from a good one.

``torch.load`` on a damaged file fails with messages that name neither the
file nor the cause (``PytorchStreamReader failed reading zip archive:
failed finding central directory``, ``OSError: [Errno 22] Invalid
argument``, ``EOFError: Ran out of input``, ``invalid load key``). This
module

* inspects a file's structure without unpickling it
  (:func:`checkpoint_file_problem`): empty, a zip archive cut short (its
  central directory, written last, is missing), a member failing its CRC,
  a zip without ``data.pkl``, or bytes that are neither a zip archive nor a
  pickle;
* replaces mmengine's loader for local paths (the ``''`` scheme of
  ``mmengine.runner.CheckpointLoader``, which ``load_from``, ``--resume``,
  ``tools/test.py`` and ``init_cfg=dict(type='Pretrained')`` all go
  through) by :func:`load_from_local_checked`: it calls mmengine's loader
  and, when that fails on a damaged file, raises
  :class:`~vapt_mm.utils.user_errors.CheckpointError` naming the file and
  the damage. Failures on structurally sound files (a ``weights_only``
  refusal, a CUDA tensor on a CPU machine) keep their own exception.

Importing :mod:`vapt_mm` registers the loader.

Example:
    >>> checkpoint_file_problem('work_dirs/run/epoch_3.pth')  # doctest: +SKIP
    'truncated: 1048576 bytes and no zip end record ...'
"""
import os
import os.path as osp
import pickle
import zipfile
from typing import Callable, Optional

from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

from vapt_mm.utils.user_errors import CheckpointError, user_message

__all__ = [
    'checkpoint_file_problem', 'unreadable_checkpoint_error',
    'load_from_local_checked', 'register_checked_local_loader'
]

_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = 0x80  # first byte of a pickle with protocol >= 2
_DOCS = 'docs/training.md#unreadable-checkpoints'


def checkpoint_file_problem(path: str,
                            error: Optional[BaseException] = None
                            ) -> Optional[str]:
    """What is wrong with the structure of a checkpoint file, if anything.

    Nothing is unpickled. A zip archive (every ``torch.save`` since torch
    1.6) is checked member by member against its CRCs, which reads the
    whole file. A file in torch's legacy pickle format cannot be checked
    without loading it; it is reported truncated only when ``error`` (the
    exception its loading raised) says the data ended early.

    Args:
        path (str): The checkpoint file.
        error (BaseException, optional): The exception loading it raised.

    Returns:
        str or None: A short description of the damage (``'empty (0
        bytes)'``, ``'truncated: ...'``, ``'corrupt: ...'``, ``'not a
        PyTorch checkpoint: ...'``), or None when the file looks sound.

    Example:
        >>> with open('/tmp/empty.pth', 'wb'):
        ...     pass
        >>> checkpoint_file_problem('/tmp/empty.pth')
        'empty (0 bytes): the write that created it was interrupted'
    """
    size = os.path.getsize(path)
    if size == 0:
        return 'empty (0 bytes): the write that created it was interrupted'
    with open(path, 'rb') as f:
        head = f.read(16)
    if head.startswith(_ZIP_MAGIC):
        return _zip_problem(path, size)
    if head[0] == _PICKLE_PROTO:
        cut_short = isinstance(error, EOFError) or (
            isinstance(error, pickle.UnpicklingError)
            and 'truncated' in str(error))
        if cut_short:
            return (f'truncated: {size} bytes of a legacy-format (pickle) '
                    'checkpoint whose data ends early')
        return None
    return (f'not a PyTorch checkpoint: it starts with {head[:8]!r}, '
            "where torch.save writes a zip archive (b'PK\\x03\\x04')")


def _zip_problem(path: str, size: int) -> Optional[str]:
    """The damage of a file that starts like a zip archive, if any."""
    if not zipfile.is_zipfile(path):
        return (f'truncated: {size} bytes and no zip end record, so the '
                'write that created it stopped before the end')
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return f'corrupt: the zip archive cannot be read ({err})'
    if bad_member is not None:
        return (f'corrupt: member {bad_member!r} does not match its CRC '
                'checksum')
    if not any(name.endswith('data.pkl') for name in names):
        return ('not a PyTorch checkpoint: a zip archive without the '
                'data.pkl record torch.save writes')
    return None


def unreadable_checkpoint_error(path: str, problem: str) -> CheckpointError:
    """The :class:`CheckpointError` for a damaged checkpoint file.

    Args:
        path (str): The file.
        problem (str): What :func:`checkpoint_file_problem` found.

    Returns:
        CheckpointError: The error to raise.

    Example:
        >>> print(unreadable_checkpoint_error('a.pth', 'empty (0 bytes)'))
        ... # doctest: +ELLIPSIS
        the checkpoint file is unreadable: empty (0 bytes)
          where: a.pth
        ...
    """
    return CheckpointError(
        user_message(
            f'the checkpoint file is unreadable: {problem}',
            where=path,
            fix='use an earlier checkpoint of the run (tools/train.py '
            '--resume without a path skips unreadable ones) or write this '
            'one again; delete the damaged file',
            docs=_DOCS))


def load_from_local_checked(filename: str,
                            map_location: Optional[object] = None) -> object:
    """mmengine's ``load_from_local`` with damaged files named.

    Args:
        filename (str): A local checkpoint path.
        map_location (str | callable, optional): As for ``torch.load``.

    Returns:
        object: The loaded checkpoint.

    Raises:
        CheckpointError: If loading fails and the file is empty, truncated,
            corrupt or not a PyTorch checkpoint.
        FileNotFoundError: If the file does not exist (mmengine's error).

    Example:
        >>> ckpt = load_from_local_checked('epoch_1.pth')  # doctest: +SKIP
    """
    try:
        return load_from_local(filename, map_location)
    except FileNotFoundError:
        raise
    except Exception as error:
        path = osp.expanduser(filename)
        try:
            problem = checkpoint_file_problem(path, error)
        except OSError:
            problem = None
        if problem is None:
            raise
        raise unreadable_checkpoint_error(path, problem) from error


_registered_loader: Optional[Callable] = None


def register_checked_local_loader() -> None:
    """Make :func:`load_from_local_checked` mmengine's local loader.

    Idempotent; replaces the loader of the ``''`` scheme (local paths) in
    ``mmengine.runner.CheckpointLoader``. URLs and other schemes keep their
    loaders.

    Example:
        >>> register_checked_local_loader()
    """
    global _registered_loader
    if _registered_loader is load_from_local_checked:
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_checked, force=True)
    _registered_loader = load_from_local_checked


register_checked_local_loader()
