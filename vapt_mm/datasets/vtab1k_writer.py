"""Write one task folder in the VTAB-1k layout: images and list files.

The one writer behind the toy data (:mod:`vapt_mm.datasets.toy_data`) and
the demo's digits (:mod:`vapt_mm.datasets.demo_data`)::

    <task_dir>/
    ├── <image files>       at the relative paths the caller gives
    ├── train800.txt        '<relative image path> <label>' per line
    ├── val200.txt
    ├── train800val200.txt  train800 followed by val200, as in the release
    └── test.txt

List files are written atomically (:func:`vapt_mm.utils.atomic_io.
atomic_write`), so an interrupted run never leaves a truncated list.

Example:
    >>> from PIL import Image
    >>> samples = dict(train800=[('images/a.png', 0)],
    ...                val200=[('images/b.png', 1)], test=[])
    >>> lists = write_vtab1k_task(
    ...     '/tmp/vtab-1k/tiny', samples,
    ...     lambda split, i: Image.new('RGB', (8, 8)))
    >>> lists['train800val200']
    ['images/a.png 0', 'images/b.png 1']
"""
import os
import os.path as osp
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

from PIL import Image

from ..utils.atomic_io import atomic_write

__all__ = ['VTAB1K_IMAGE_SPLITS', 'vtab1k_list_lines', 'write_vtab1k_task']

#: The splits whose images are written; ``train800val200`` lists the
#: ``train800`` and ``val200`` images again.
VTAB1K_IMAGE_SPLITS: Tuple[str, ...] = ('train800', 'val200', 'test')


def vtab1k_list_lines(
    samples: Mapping[str, Sequence[Tuple[str, int]]]
) -> Dict[str, List[str]]:
    """The lines of the four VTAB-1k list files.

    Args:
        samples (Mapping[str, Sequence[tuple[str, int]]]): For
            ``train800``, ``val200`` and ``test``: the (image path relative
            to the task folder, label) of each image, in list order.

    Returns:
        dict[str, list[str]]: ``train800``, ``val200``, ``test`` and
        ``train800val200`` to their ``'<path> <label>'`` lines.

    Raises:
        KeyError: If a split of :data:`VTAB1K_IMAGE_SPLITS` is missing.

    Example:
        >>> vtab1k_list_lines(dict(train800=[('a.png', 3)], val200=[],
        ...                        test=[]))['train800']
        ['a.png 3']
    """
    missing = [s for s in VTAB1K_IMAGE_SPLITS if s not in samples]
    if missing:
        raise KeyError(f'vtab1k_list_lines: no samples for the split(s) '
                       f'{missing}; expected {list(VTAB1K_IMAGE_SPLITS)}.')
    lines = {
        split: [f'{path} {int(label)}' for path, label in samples[split]]
        for split in VTAB1K_IMAGE_SPLITS
    }
    lines['train800val200'] = lines['train800'] + lines['val200']
    return lines


def write_vtab1k_task(
        task_dir: str, samples: Mapping[str, Sequence[Tuple[str, int]]],
        draw: Callable[[str, int], Image.Image]) -> Dict[str, List[str]]:
    """Write the images and the four list files of one VTAB-1k task.

    Images are drawn and saved in list order (``train800``, ``val200``,
    ``test``), so a ``draw`` that consumes a random generator gives the
    same pictures on every run. The format follows the file extension.

    Args:
        task_dir (str): The task folder; created if missing.
        samples (Mapping[str, Sequence[tuple[str, int]]]): For
            ``train800``, ``val200`` and ``test``: the (image path relative
            to ``task_dir``, label) of each image, in list order.
        draw (Callable[[str, int], PIL.Image.Image]): ``draw(split, i)``
            returns the ``i``-th image of ``split``.

    Returns:
        dict[str, list[str]]: The written lines per list file (see
        :func:`vtab1k_list_lines`).

    Example:
        >>> write_vtab1k_task('/tmp/t', dict(train800=[], val200=[],
        ...                                  test=[]), None)['test']
        []
    """
    lines = vtab1k_list_lines(samples)
    for split in VTAB1K_IMAGE_SPLITS:
        for i, (path, _) in enumerate(samples[split]):
            target = osp.join(task_dir, path)
            os.makedirs(osp.dirname(target), exist_ok=True)
            draw(split, i).save(target)
    for split in (*VTAB1K_IMAGE_SPLITS[:2], 'train800val200', 'test'):
        with atomic_write(osp.join(task_dir, f'{split}.txt'), 'w') as f:
            f.writelines(f'{line}\n' for line in lines[split])
    return lines
