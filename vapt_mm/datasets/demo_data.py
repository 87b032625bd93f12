"""Write the embedded demo's data: real handwritten digits, VTAB-1k layout.

The images are scikit-learn's copy of the UCI "Optical Recognition of
Handwritten Digits" test set (``sklearn.datasets.load_digits``: 1,797
scanned digits, 8 x 8 pixels, 17 grey levels, 10 classes), which ships
inside the scikit-learn wheel, so nothing is downloaded. Each digit is
drawn as dark ink on white paper, upscaled (bilinear) to ``img_size`` and
saved as an RGB PNG. The splits are disjoint and class-balanced, drawn with
a fixed seed, and written as the VTAB-1k list files that
:class:`vapt_mm.datasets.VTAB1k` and mmpretrain's ``CustomDataset`` read::

    <root>/<task>/
    ├── images/digit_0000.png ...   one file per sklearn index used
    ├── train800.txt                'images/digit_0123.png 7' lines
    ├── val200.txt
    ├── train800val200.txt          train800 followed by val200
    ├── test.txt
    └── demo_data.json              what was written (for idempotence)

The split names follow VTAB-1k; their sizes are the demo's (see
:data:`DEMO_SPLIT_SIZES`), not 800/200.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
from mmengine.logging import print_log
from PIL import Image

from ..utils.atomic_io import atomic_write
from ..utils.user_errors import MissingPackageError
from .vtab1k_writer import vtab1k_list_lines, write_vtab1k_task

#: Default images per split of the demo (1,797 digits exist in all).
DEMO_SPLIT_SIZES: Dict[str, int] = dict(train800=400, val200=200, test=500)

#: Number of classes of the digits task.
DIGITS_NUM_CLASSES = 10

_SPLITS = ('train800', 'val200', 'test')
_MANIFEST = 'demo_data.json'
_SOURCE = 'sklearn.datasets.load_digits'


def load_digits_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's digits as ``(images, labels)``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``images`` of shape (1797, 8, 8) with
        values 0..16 (16 = full ink) and integer ``labels`` 0..9.

    Raises:
        ImportError: If scikit-learn is not installed.

    Example:
        >>> images, labels = load_digits_arrays()
        >>> images.shape, int(labels.max())
        ((1797, 8, 8), 9)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise MissingPackageError(
            'The demo data are the digits that ship with scikit-learn: run '
            '`pip install scikit-learn` (or `pip install -e .[optional]`).'
        ) from err
    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)


def balanced_splits(labels: np.ndarray, sizes: Mapping[str, int],
                    seed: int) -> Dict[str, List[int]]:
    """Draw disjoint, class-balanced index lists for the demo splits.

    Every class is shuffled with ``seed``; the classes are then interleaved
    (one image of each class in turn), and consecutive runs of that order
    form ``train800``, ``val200`` and ``test``. A split of ``n`` images thus
    holds ``n // 10`` or ``n // 10 + 1`` images of each class.

    Args:
        labels (np.ndarray): Label of every available image.
        sizes (Mapping[str, int]): Images per split, keys ``train800``,
            ``val200`` and ``test``.
        seed (int): Seed of the shuffle.

    Returns:
        dict[str, list[int]]: Indices into ``labels`` per split.

    Raises:
        ValueError: If a size is missing, not a positive int, or the sizes
            add up to more images than there are.

    Example:
        >>> labels = np.repeat(np.arange(10), 5)
        >>> s = balanced_splits(labels, dict(train800=20, val200=10,
        ...                                  test=10), seed=0)
        >>> sorted(np.bincount(labels[s['train800']]).tolist())
        [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    """
    unknown = set(sizes) - set(_SPLITS)
    if unknown:
        raise ValueError(f'Unknown demo split(s) {sorted(unknown)}; expected '
                         f'sizes for {list(_SPLITS)}.')
    for split in _SPLITS:
        value = sizes.get(split)
        if isinstance(value, bool) or not isinstance(value, int) \
                or value < 1:
            raise ValueError(f'Demo split size {split}={value!r} must be a '
                             'positive int.')
    total = sum(sizes[s] for s in _SPLITS)
    if total > len(labels):
        raise ValueError(f'Demo split sizes {dict(sizes)} add up to {total} '
                         f'images, but only {len(labels)} digits exist.')
    rng = np.random.RandomState(seed)
    per_class = [
        list(rng.permutation(np.flatnonzero(labels == c)))
        for c in np.unique(labels)
    ]
    order: List[int] = []
    for rank in range(max(len(idx) for idx in per_class)):
        turn = [int(idx[rank]) for idx in per_class if rank < len(idx)]
        order.extend(turn[i] for i in rng.permutation(len(turn)))
    out, start = {}, 0
    for split in _SPLITS:
        out[split] = order[start:start + sizes[split]]
        start += sizes[split]
    return out


def digit_to_rgb(image: np.ndarray, img_size: int) -> Image.Image:
    """Render one 8 x 8 digit (0..16) as dark ink on white, RGB, upscaled.

    Args:
        image (np.ndarray): The 8 x 8 digit, 16 meaning full ink.
        img_size (int): Side of the square output image in pixels.

    Returns:
        PIL.Image.Image: An RGB image of ``img_size`` x ``img_size``.

    Example:
        >>> img = digit_to_rgb(np.zeros((8, 8)), 56)
        >>> img.mode, img.size, img.getpixel((0, 0))
        ('RGB', (56, 56), (255, 255, 255))
    """
    grey = np.round(255.0 * (1.0 - np.asarray(image, np.float64) / 16.0))
    small = Image.fromarray(grey.clip(0, 255).astype(np.uint8), mode='L')
    return small.resize((img_size, img_size),
                        Image.BILINEAR).convert('RGB')


def _samples(indices: List[int],
             labels: np.ndarray) -> List[Tuple[str, int]]:
    return [(f'images/digit_{i:04d}.png', int(labels[i])) for i in indices]


def _is_complete(task_dir: str, manifest: dict,
                 lists: Mapping[str, List[str]]) -> bool:
    """True if ``task_dir`` holds exactly what ``manifest`` describes."""
    try:
        with open(osp.join(task_dir, _MANIFEST), encoding='utf-8') as f:
            if json.load(f) != manifest:
                return False
        for split, lines in lists.items():
            with open(osp.join(task_dir, f'{split}.txt'),
                      encoding='utf-8') as f:
                if f.read().splitlines() != lines:
                    return False
    except (OSError, ValueError):
        return False
    return all(
        osp.isfile(osp.join(task_dir, line.rsplit(' ', 1)[0]))
        for line in lists['train800val200'] + lists['test'])


def write_demo_data(root: str,
                    task: str = 'digits',
                    sizes: Optional[Mapping[str, int]] = None,
                    img_size: int = 56,
                    seed: int = 0) -> str:
    """Write the digits demo task in the VTAB-1k layout under ``root``.

    Idempotent: if ``<root>/<task>`` already holds this exact data (same
    sizes, seed and image size, list files intact, every image present),
    nothing is written. Otherwise images and list files are (re)written and
    ``demo_data.json`` is written last, so an interrupted run is redone.

    Args:
        root (str): The data root (the folder that holds task folders, like
            ``data/vtab-1k``).
        task (str): Name of the task folder. Defaults to ``'digits'``.
        sizes (Mapping[str, int], optional): Images per split, keys
            ``train800``, ``val200`` and ``test``; ``train800val200`` is
            their union. Defaults to :data:`DEMO_SPLIT_SIZES`.
        img_size (int): Side of the written images in pixels. Defaults
            to 56 (a 4 x 4 grid of 14-pixel patches).
        seed (int): Seed of the split draw. Defaults to 0.

    Returns:
        str: The task folder ``<root>/<task>``.

    Raises:
        ValueError: If a size is invalid or ``img_size`` is not positive.

    Example:
        >>> task_dir = write_demo_data('/tmp/demo_data', sizes=dict(
        ...     train800=20, val200=10, test=10))
        >>> open(task_dir + '/val200.txt').read().count('\\n')
        10
    """
    sizes = dict(DEMO_SPLIT_SIZES if sizes is None else sizes)
    if isinstance(img_size, bool) or not isinstance(img_size, int) \
            or img_size < 8:
        raise ValueError(f'write_demo_data: img_size={img_size!r} must be '
                         'an int >= 8 (the digits are 8 x 8).')
    if not task or osp.basename(task) != task:
        raise ValueError(f'write_demo_data: task={task!r} must be a plain '
                         'folder name.')
    images, labels = load_digits_arrays()
    splits = balanced_splits(labels, sizes, seed)
    samples = {split: _samples(idx, labels) for split, idx in splits.items()}
    lists = vtab1k_list_lines(samples)
    manifest = dict(
        source=_SOURCE,
        task=task,
        sizes={s: sizes[s]
               for s in _SPLITS},
        img_size=img_size,
        seed=seed,
        num_classes=DIGITS_NUM_CLASSES)

    task_dir = osp.join(root, task)
    if _is_complete(task_dir, manifest, lists):
        print_log(f'Demo data in {task_dir} are complete; not rewritten.',
                  logger='current')
        return task_dir

    stale = osp.join(task_dir, _MANIFEST)
    if osp.exists(stale):
        os.remove(stale)
    write_vtab1k_task(
        task_dir, samples,
        lambda split, i: digit_to_rgb(images[splits[split][i]], img_size))
    with atomic_write(osp.join(task_dir, _MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=2)
    print_log(
        f'Wrote demo data to {task_dir}: ' + ', '.join(
            f'{s} {len(lists[s])}'
            for s in ('train800', 'val200', 'train800val200', 'test')) +
        f' images of {img_size} x {img_size} px (sklearn digits, seed '
        f'{seed}).',
        logger='current')
    return task_dir
