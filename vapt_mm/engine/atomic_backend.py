"""A local file backend whose writes are atomic (temporary file, then rename).

mmengine writes checkpoints through a file backend
(``Runner.save_checkpoint`` -> ``mmengine.runner.save_checkpoint`` ->
``backend.put(bytes, path)``). Its ``LocalBackend.put`` opens the target
with ``open(path, 'wb')``, so a run killed while saving leaves a truncated
``epoch_N.pth`` beside the good ones. :class:`AtomicLocalBackend` writes
through :func:`vapt_mm.utils.atomic_io.atomic_write` instead: the file
appears whole or not at all.

It is registered in mmengine's backend registry as ``'atomic_local'``;
select it with ``backend_args=dict(backend='atomic_local')``.
:class:`~vapt_mm.engine.hooks.AtomicCheckpointHook` (the default checkpoint
hook of ``configs/_base_/default_runtime.py``) does that for local
checkpoint folders.

Example:
    >>> from mmengine.fileio import get_file_backend
    >>> backend = get_file_backend(
    ...     'work_dirs/run', backend_args=dict(backend='atomic_local'))
    >>> backend.put(b'data', 'work_dirs/run/file.bin')  # doctest: +SKIP
"""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from vapt_mm.utils.atomic_io import atomic_write

__all__ = ['AtomicLocalBackend', 'ATOMIC_LOCAL_BACKEND']

#: The name under which :class:`AtomicLocalBackend` is registered.
ATOMIC_LOCAL_BACKEND = 'atomic_local'


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put`` and ``put_text`` are atomic.

    Everything else (reading, listing, removing, joining paths) is
    mmengine's ``LocalBackend``.

    Example:
        >>> backend = AtomicLocalBackend()
        >>> backend.put(b'abc', '/tmp/atomic_example.bin')
        >>> backend.get('/tmp/atomic_example.bin')
        b'abc'
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically (its folder is created).

        Args:
            obj (bytes): Data to be written.
            filepath (str or Path): Path to write data.
        """
        with atomic_write(str(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (its folder is created).

        Args:
            obj (str): Text to be written.
            filepath (str or Path): Path to write data.
            encoding (str): The text encoding. Defaults to 'utf-8'.
        """
        with atomic_write(str(filepath), 'wb') as f:
            f.write(obj.encode(encoding))


# force: re-importing the module (importlib.reload) registers it again.
register_backend(ATOMIC_LOCAL_BACKEND, AtomicLocalBackend, force=True)
