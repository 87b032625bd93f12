"""Write files atomically: a temporary file beside the target, then rename.

A process killed while writing leaves the old file (or none) in place,
never a truncated one. Every file vapt_mm writes (checkpoints, prompt files,
converted weights, sweep state) goes through :func:`atomic_write`.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import IO, Iterator

__all__ = ['atomic_write', 'atomic_torch_save']


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb') -> Iterator[IO]:
    """Open a temporary file for writing; on success move it to ``path``.

    The data is flushed and fsynced before ``os.replace``, which is atomic
    on POSIX and Windows when source and target are on the same file
    system (the temporary file is created in the target's folder). If the
    block raises, the temporary file is removed and ``path`` is untouched.

    Args:
        path (str): The file to write.
        mode (str): ``'wb'`` (default) or ``'w'`` (text, UTF-8).

    Yields:
        file: The open temporary file.

    Example:
        >>> with atomic_write('/tmp/state.json', 'w') as f:
        ...     _ = f.write('{}')
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got "
                         f'{mode!r}.')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        kwargs = dict(encoding='utf-8') if mode == 'w' else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the permissions an
        # ordinary open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_torch_save(obj: object, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`.

    Args:
        obj (object): What to save.
        path (str): The target file.

    Example:
        >>> atomic_torch_save({'w': torch.zeros(1)}, '/tmp/w.pth')
    """
    import torch
    with atomic_write(path, 'wb') as f:
        torch.save(obj, f)
