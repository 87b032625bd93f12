"""Let torch >= 2.6 load the checkpoints mmengine's Runner writes.

torch 2.6 changed the default of ``torch.load`` to ``weights_only=True``:
only tensors, plain containers and an allow-list of globals may be
unpickled. mmengine 0.10.7 calls ``torch.load`` without ``weights_only``,
and a checkpoint written by its ``Runner.save_checkpoint`` holds more than
tensors: the message hub keeps ``HistoryBuffer`` objects with numpy arrays,
numpy scalars and the buffer's statistic methods. ``resume`` and
``load_from`` then fail with "Unsupported global: ... HistoryBuffer",
then with numpy's dtype classes, then with ``builtins.getattr``.

This module extends torch's allow-list with exactly the globals such a
checkpoint needs (``torch.serialization.add_safe_globals``), so loading
keeps running under ``weights_only=True``:

* ``mmengine.logging.HistoryBuffer`` (a data holder: arrays and an int);
* numpy's array and scalar reconstruction (``_reconstruct``, ``ndarray``,
  ``dtype``, ``scalar`` and the ``numpy.dtypes.*DType`` classes), under
  their numpy 2 and numpy 1 names (``numpy._core`` / ``numpy.core``);
* ``builtins.getattr``, which pickle uses (protocol 2) to refer to a
  method such as ``HistoryBuffer.min``. The real ``getattr`` is never
  allowed: it would let a crafted file reach any attribute of any allowed
  object (``ndarray.tofile`` writes files). The name is bound to
  :func:`history_buffer_statistic` instead, which returns only
  ``HistoryBuffer``'s own statistic methods and refuses everything else.

Nothing here sets ``weights_only=False`` or an environment variable.
Plain tensor state dicts (the weights we publish or convert) need none of
these globals and load with ``weights_only=True`` as before.

Importing :mod:`vapt_mm` registers the allow-list (see
:func:`register_runner_checkpoint_globals`).

Example:
    >>> import torch
    >>> import vapt_mm  # noqa: F401  (registers the allow-list)
    >>> ckpt = torch.load('work_dirs/run/epoch_1.pth')  # doctest: +SKIP
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

__all__ = [
    'history_buffer_statistic', 'runner_checkpoint_safe_globals',
    'register_runner_checkpoint_globals'
]

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# The statistic methods HistoryBuffer registers for itself; pickle stores
# them as ``getattr(HistoryBuffer, name)``.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'mean', 'current')

_registered = False


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``getattr`` while unpickling a Runner checkpoint.

    A checkpoint written by mmengine's Runner refers to
    ``HistoryBuffer.min`` (and ``max``, ``mean``, ``current``) as
    ``getattr(HistoryBuffer, 'min')``. This function is registered under the
    name ``builtins.getattr`` in torch's ``weights_only`` allow-list and
    returns exactly those methods; any other owner or attribute is refused,
    so an allow-listed ``getattr`` cannot be used to reach arbitrary code.

    Args:
        owner (Any): The object the checkpoint asks an attribute of; must be
            the ``HistoryBuffer`` class.
        name (str): The attribute; must be one of HistoryBuffer's statistic
            methods.

    Returns:
        Callable: The method ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other owner or attribute name.

    Example:
        >>> from mmengine.logging import HistoryBuffer
        >>> history_buffer_statistic(HistoryBuffer, 'mean') is \\
        ...     HistoryBuffer.mean
        True
    """
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    owner_name = getattr(owner, '__qualname__', type(owner).__qualname__)
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({owner_name}, {name!r}): '
        'vapt_mm allows getattr only for the statistic methods '
        f'{list(_HISTORY_BUFFER_STATISTICS)} of '
        'mmengine.logging.HistoryBuffer, which checkpoints written by '
        "mmengine's Runner contain. This file holds something else; load it "
        'with weights_only=False only if you trust its source.')


def _numpy_globals() -> List[SafeGlobal]:
    """Numpy callables and classes that pickled arrays and scalars use."""
    try:  # numpy >= 2
        multiarray = np._core.multiarray
    except AttributeError:  # numpy 1.x
        multiarray = np.core.multiarray
    safe: List[SafeGlobal] = [np.ndarray, np.dtype]
    for name in ('_reconstruct', 'scalar'):
        func = getattr(multiarray, name)
        # Files written under numpy 2 say ``numpy._core``, under numpy 1
        # ``numpy.core``; accept both spellings.
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            safe.append((func, f'{module}.{name}'))
    # numpy >= 1.25 gives every dtype its own class (numpy.dtypes.Float64DType
    # ...); unpickling a dtype sets its state, which needs the class allowed.
    dtypes_module = getattr(np, 'dtypes', None)
    if dtypes_module is not None:
        for name in dir(dtypes_module):
            cls = getattr(dtypes_module, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                safe.append((cls, f'numpy.dtypes.{name}'))
    return safe


def runner_checkpoint_safe_globals() -> List[SafeGlobal]:
    """The globals a checkpoint written by mmengine's Runner needs.

    Returns:
        list: Items for ``torch.serialization.add_safe_globals``: classes and
        functions, or ``(object, 'module.name')`` pairs where the name in the
        file differs from the object's own.

    Example:
        >>> from mmengine.logging import HistoryBuffer
        >>> HistoryBuffer in runner_checkpoint_safe_globals()
        True
    """
    return [
        HistoryBuffer,
        (history_buffer_statistic, 'builtins.getattr'),
    ] + _numpy_globals()


def register_runner_checkpoint_globals() -> bool:
    """Allow-list :func:`runner_checkpoint_safe_globals` in torch.

    Idempotent. Does nothing on torch < 2.6, whose ``torch.load`` defaults to
    ``weights_only=False`` and loads Runner checkpoints as they are.

    Returns:
        bool: Whether the allow-list is registered (False on old torch).

    Example:
        >>> register_runner_checkpoint_globals()
        True
    """
    global _registered
    if _registered:
        return True
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return False
    torch.serialization.add_safe_globals(runner_checkpoint_safe_globals())
    _registered = True
    return True


register_runner_checkpoint_globals()
