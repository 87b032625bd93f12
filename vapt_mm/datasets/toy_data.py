"""Write tiny VTAB-1k / FGVC copies in the real layout.

For tests, demos and smoke runs on machines without the real data: the
folders, list files and JSON split files look exactly like the real ones,
only the images are small and synthetic. Each image is a flat colour that
depends on its class plus a little noise, so a model can learn the task.

Example:
    >>> from vapt_mm.datasets.toy_data import make_toy_vtab1k
    >>> root = make_toy_vtab1k('/tmp/vtab-1k', tasks=['eurosat'],
    ...                        sizes=dict(train800=16, val200=4, test=8))
    >>> open('/tmp/vtab-1k/eurosat/train800val200.txt').read().count('\\n')
    20
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
from PIL import Image

from .task_info import (FGVC_DATASETS, FGVC_SPLIT_FILES, VTAB1K_NUM_CLASSES,
                        VTAB1K_SPLIT_SIZES)
from .vtab1k_writer import VTAB1K_IMAGE_SPLITS, write_vtab1k_task

#: Default number of images per VTAB-1k split: the real train sizes and a
#: small test split.
DEFAULT_VTAB1K_SIZES: Dict[str, int] = dict(
    train800=VTAB1K_SPLIT_SIZES['train800'],
    val200=VTAB1K_SPLIT_SIZES['val200'],
    test=20)


def class_colour(label: int, num_classes: int) -> np.ndarray:
    """The RGB colour (uint8, shape (3,)) that toy images of a class use.

    Args:
        label (int): Class index.
        num_classes (int): Number of classes.

    Returns:
        np.ndarray: Three values in 0..255, distinct per class.

    Example:
        >>> class_colour(0, 4).tolist()
        [31, 223, 217]
    """
    t = (label + 0.5) / num_classes
    return np.array([255 * t, 255 * (1 - t), 128 + 127 * np.sin(6.28 * t)],
                    dtype=np.float64).clip(0, 255).astype(np.uint8)


def toy_image(label: int,
              num_classes: int,
              size: int = 16,
              rng: Optional[np.random.Generator] = None) -> Image.Image:
    """A toy RGB image of class ``label``: its colour plus a little noise.

    Args:
        label (int): Class index.
        num_classes (int): Number of classes.
        size (int): Height and width. Defaults to 16.
        rng (np.random.Generator, optional): Noise source; defaults to one
            seeded with ``label``.

    Returns:
        PIL.Image.Image: The image.

    Example:
        >>> toy_image(2, 10).size
        (16, 16)
    """
    rng = np.random.default_rng(label) if rng is None else rng
    noise = rng.integers(-8, 9, size=(size, size, 3))
    pixels = np.clip(class_colour(label, num_classes) + noise, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def write_toy_image(path: str,
                    label: int,
                    num_classes: int,
                    size: int = 16,
                    rng: Optional[np.random.Generator] = None) -> None:
    """Write one toy image of class ``label`` (format from the extension).

    Args:
        path (str): Output file; parent folders are created.
        label (int): Class index.
        num_classes (int): Number of classes.
        size (int): Height and width. Defaults to 16.
        rng (np.random.Generator, optional): Noise source.

    Example:
        >>> write_toy_image('/tmp/a.png', 2, 10)
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    toy_image(label, num_classes, size, rng).save(path)


def make_toy_vtab1k(data_root: str,
                    tasks: Sequence[str] = ('eurosat', ),
                    sizes: Optional[Dict[str, int]] = None,
                    image_size: int = 16,
                    ext: str = 'png',
                    seed: int = 0) -> str:
    """Write a toy VTAB-1k copy: per task ``images/`` and the four list
    files, labels cycling through all classes.

    ``train800val200.txt`` lists the ``train800`` images followed by the
    ``val200`` ones, as in the real release.

    Args:
        data_root (str): Folder to create the task folders in.
        tasks (Sequence[str]): Task names. Defaults to ``('eurosat',)``.
        sizes (dict[str, int], optional): Images per split, keys
            ``train800``, ``val200``, ``test``; defaults to
            :data:`DEFAULT_VTAB1K_SIZES` (800 / 200 / 20).
        image_size (int): Height and width of the images. Defaults to 16.
        ext (str): Image format extension (``png``, ``jpg``). Defaults to
            ``png``.
        seed (int): Seed of the pixel noise. Defaults to 0.

    Returns:
        str: ``data_root``.

    Example:
        >>> make_toy_vtab1k('/tmp/vtab-1k', tasks=['dtd', 'kitti'])
        '/tmp/vtab-1k'
    """
    sizes = {**DEFAULT_VTAB1K_SIZES, **(sizes or {})}
    rng = np.random.default_rng(seed)
    for task in tasks:
        num_classes = VTAB1K_NUM_CLASSES[task]
        samples = {
            split: [(f'images/{split}/{i:05d}.{ext}', i % num_classes)
                    for i in range(sizes[split])]
            for split in VTAB1K_IMAGE_SPLITS
        }
        write_vtab1k_task(
            osp.join(data_root, task), samples,
            lambda split, i: toy_image(samples[split][i][1], num_classes,
                                       image_size, rng))
    return data_root


def make_toy_fgvc(data_root: str,
                  datasets: Sequence[str] = ('oxfordflower', ),
                  per_class: Optional[Dict[str, int]] = None,
                  image_size: int = 16,
                  seed: int = 0) -> str:
    """Write a toy FGVC copy with the VPT authors' JSON split files.

    Class ids in the JSON files are ``1, 3, 5, ...`` (sparse, like NABirds),
    so readers must map them to contiguous labels.

    Args:
        data_root (str): Folder to create the data set folders in.
        datasets (Sequence[str]): Data set names. Defaults to
            ``('oxfordflower',)``.
        per_class (dict[str, int], optional): Images per class in each split
            file; defaults to ``dict(train=1, val=1, test=1)``.
        image_size (int): Height and width of the images. Defaults to 16.
        seed (int): Seed of the pixel noise. Defaults to 0.

    Returns:
        str: ``data_root``.

    Example:
        >>> make_toy_fgvc('/tmp/fgvc', datasets=['cub'])
        '/tmp/fgvc'
    """
    per_class = {**dict(train=1, val=1, test=1), **(per_class or {})}
    rng = np.random.default_rng(seed)
    for name in datasets:
        spec = FGVC_DATASETS[name]
        ds_dir = osp.join(data_root, spec.folder)
        image_root = osp.join(ds_dir, spec.image_dir)
        for split in FGVC_SPLIT_FILES:
            content = {}
            for label in range(spec.num_classes):
                for k in range(per_class[split]):
                    rel = f'class_{label:03d}/{split}_{k:02d}.jpg'
                    write_toy_image(
                        osp.join(image_root, rel), label, spec.num_classes,
                        image_size, rng)
                    content[rel] = 2 * label + 1
            with open(osp.join(ds_dir, f'{split}.json'), 'w') as f:
                json.dump(content, f)
    return data_root
