"""The FGVC benchmark (five fine-grained data sets) as an mmpretrain
dataset, read from the VPT authors' JSON split files."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.user_errors import (ConfigError, ConfigTypeError, DataError,
                                 MissingFileError)
from .annotation_files import (check_choice, check_dir, check_file,
                               check_not_empty, find_missing_files,
                               missing_files_message, read_fgvc_split_file)
from .task_info import (FGVC_DATASETS, FGVC_SPLIT_FILES, FGVC_SPLIT_SOURCES,
                        FGVC_SPLITS, docs_hint)

#: What an FGVC split file holds, for the error messages.
_SPLIT_CONTENT = 'a JSON object mapping image path to class id'


def fgvc_class_ids(split_maps: Dict[str, Dict[str, int]]) -> List[int]:
    """Sorted union of the class ids over several split files.

    Index ``i`` of the result is the contiguous label of original id
    ``result[i]``; using the union over all split files keeps the mapping the
    same for every split.

    Args:
        split_maps (dict[str, dict[str, int]]): Split name to the content of
            its split file.

    Returns:
        list[int]: The distinct class ids, ascending.

    Example:
        >>> fgvc_class_ids({'train': {'a.jpg': 7, 'b.jpg': 3},
        ...                 'test': {'c.jpg': 9}})
        [3, 7, 9]
    """
    return sorted({i for content in split_maps.values() for i in
                   content.values()})


def fgvc_dataset_path(data_root: str,
                      dataset: str,
                      dataset_dir: Optional[str] = None) -> str:
    """Check the data set name and its folders; return the data set folder.

    Args:
        data_root (str): Folder holding the data set folders.
        dataset (str): FGVC data set name (``'cub'``, ...).
        dataset_dir (str, optional): Folder of the data set under
            ``data_root`` if not the default one.

    Returns:
        str: ``<data_root>/<dataset folder>``.

    Raises:
        ConfigError: If ``dataset`` is not an FGVC data set.
        MissingFileError: If a folder is missing.

    Example:
        >>> fgvc_dataset_path('data/fgvc', 'cub')
        'data/fgvc/CUB_200_2011'
    """
    check_choice('FGVC dataset', dataset, tuple(FGVC_DATASETS))
    spec = FGVC_DATASETS[dataset]
    check_dir(
        data_root, 'FGVC data root', 'the data set folders (' + ', '.join(
            f'{s.folder} for {n!r}' for n, s in FGVC_DATASETS.items()) + ')')
    path = osp.join(data_root,
                    spec.folder if dataset_dir is None else dataset_dir)
    check_dir(path, f'FGVC folder of {dataset!r} ({spec.full_name})',
              'train.json, val.json, test.json and the images')
    return path


def read_fgvc_split(dataset_path: str, dataset: str,
                    split: str) -> Tuple[List[Tuple[str, int]], List[int]]:
    """Read the split file(s) of one split and map class ids to labels.

    Checks that the needed split files exist and parse, that the split files
    together hold the data set's class count, that ``trainval`` lists no
    image twice and that the split lists at least one image. Images are not
    touched.

    Args:
        dataset_path (str): The data set folder (train.json, ...).
        dataset (str): FGVC data set name.
        split (str): ``'train'``, ``'val'``, ``'trainval'`` or ``'test'``.

    Returns:
        tuple: ``(entries, class_ids)``: ``(image path relative to the image
        folder, contiguous label)`` per image, and the original class id of
        each label.

    Raises:
        ConfigError: If ``split`` is unknown.
        MissingFileError: If a needed split file is missing.
        DataError: If a split file does not parse, the class count is
            wrong, an image is listed twice or the split is empty.

    Example:
        >>> entries, ids = read_fgvc_split('data/fgvc/CUB_200_2011', 'cub',
        ...                                'val')
        >>> len(ids)
        200
    """
    check_choice('FGVC split', split, FGVC_SPLITS)
    spec = FGVC_DATASETS[dataset]
    needed = [
        osp.join(dataset_path, f'{name}.json')
        for name in FGVC_SPLIT_SOURCES[split]
    ]
    for path in needed:
        check_file(
            path, f'FGVC split file for split {split!r} of {dataset!r}',
            _SPLIT_CONTENT)
    split_maps = {}
    for name in FGVC_SPLIT_FILES:
        path = osp.join(dataset_path, f'{name}.json')
        if osp.isfile(path):
            split_maps[name] = read_fgvc_split_file(path)

    class_ids = fgvc_class_ids(split_maps)
    if len(class_ids) != spec.num_classes:
        files = ', '.join(f'{n}.json' for n in split_maps)
        raise DataError(
            f'The FGVC split files of {dataset!r} in {dataset_path!r} '
            f'({files}) hold {len(class_ids)} distinct class ids; expected '
            f'{spec.num_classes} for {spec.full_name} '
            f'({docs_hint("class-count")}).')
    to_label = {cid: i for i, cid in enumerate(class_ids)}

    entries: List[Tuple[str, int]] = []
    seen: Dict[str, str] = {}
    for name in FGVC_SPLIT_SOURCES[split]:
        for rel_path, cid in split_maps[name].items():
            if rel_path in seen:
                raise DataError(
                    f'{rel_path!r} is listed in both {seen[rel_path]}.json '
                    f'and {name}.json of {dataset_path!r}; expected '
                    f'disjoint splits ({docs_hint("annotation-files")}).')
            seen[rel_path] = name
            entries.append((rel_path, to_label[cid]))
    check_not_empty(len(entries), ' + '.join(needed), _SPLIT_CONTENT)
    return entries, class_ids


@DATASETS.register_module()
class FGVC(BaseDataset):
    """One FGVC data set with the VPT authors' train / val / test splits.

    Expected layout (``data_root`` holds one folder per data set; each holds
    the VPT authors' ``train.json``, ``val.json`` and ``test.json``, whose
    keys are image paths relative to the image folder)::

        data/fgvc/                       <- data_root
        ├── CUB_200_2011/                dataset='cub'          (200 classes)
        │   ├── train.json  val.json  test.json
        │   └── images/<class folder>/<image>.jpg
        ├── nabirds/                     dataset='nabirds'      (555 classes)
        │   ├── train.json  val.json  test.json
        │   └── images/<class folder>/<image>.jpg
        ├── OxfordFlower/                dataset='oxfordflower' (102 classes)
        │   ├── train.json  val.json  test.json
        │   └── jpg/image_00001.jpg      (keys like 'jpg/image_00001.jpg')
        ├── StanfordDogs/                dataset='stanforddogs' (120 classes)
        │   ├── train.json  val.json  test.json
        │   └── Images/<class folder>/<image>.jpg
        └── StanfordCars/                dataset='stanfordcars' (196 classes)
            ├── train.json  val.json  test.json
            └── car_ims/000001.jpg       (keys like 'car_ims/000001.jpg')

    Class ids in the JSON files may be any integers (NABirds' are sparse);
    they are mapped to contiguous labels ``0..C-1`` in ascending id order,
    over the union of the split files present, so every split agrees. The
    number of distinct ids must equal the data set's class count. Class names
    in ``metainfo`` are the original ids as strings; ``class_ids`` holds them
    as integers.

    Args:
        data_root (str): Folder holding the data set folders.
        dataset (str): One of ``'cub'``, ``'nabirds'``, ``'oxfordflower'``,
            ``'stanforddogs'``, ``'stanfordcars'``.
        split (str): ``'train'``, ``'val'``, ``'test'`` or ``'trainval'``
            (``train.json`` and ``val.json`` together: the final training
            set of the protocol). Defaults to ``'train'``.
        pipeline (Sequence): Processing pipeline. Defaults to ``()``.
        test_mode (bool): Passed to :class:`mmpretrain.datasets.BaseDataset`.
            Defaults to False.
        check_files (bool): Check that every listed image exists when the
            annotations are loaded. Defaults to True.
        dataset_dir (str, optional): Folder of the data set under
            ``data_root`` if it is not the default one shown above.
        image_dir (str, optional): Folder, relative to the data set folder,
            that the JSON paths are relative to, if not the default one
            (``images``, ``images``, ``''``, ``Images``, ``''``).
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``metainfo``, ``classes``, ``indices``, ``lazy_init``, ...),
            except ``ann_file`` and ``data_prefix``.

    Example:
        >>> from mmpretrain.registry import DATASETS
        >>> import vapt_mm  # noqa: registers FGVC
        >>> ds = DATASETS.build(dict(type='FGVC', data_root='data/fgvc',
        ...                          dataset='cub', split='test'))
        >>> len(ds.metainfo['classes'])
        200
    """

    def __init__(self,
                 data_root: str,
                 dataset: str,
                 split: str = 'train',
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 check_files: bool = True,
                 dataset_dir: Optional[str] = None,
                 image_dir: Optional[str] = None,
                 **kwargs) -> None:
        check_choice('FGVC dataset', dataset, tuple(FGVC_DATASETS))
        check_choice('FGVC split', split, FGVC_SPLITS)
        for key in ('ann_file', 'data_prefix'):
            if key in kwargs:
                raise ConfigTypeError(
                    f'FGVC sets {key!r} itself from dataset and split; got '
                    f'{key}={kwargs[key]!r}. Use data_root, dataset, split '
                    '(and dataset_dir / image_dir) instead '
                    f'({docs_hint("config-values")}).')
        spec = FGVC_DATASETS[dataset]
        folder = spec.folder if dataset_dir is None else dataset_dir
        self.dataset_path = fgvc_dataset_path(data_root, dataset, dataset_dir)

        self.dataset = dataset
        self.split = split
        self.check_files = check_files
        self.num_classes = spec.num_classes
        self.full_name = spec.full_name
        self.split_files: Tuple[str, ...] = tuple(
            osp.join(self.dataset_path, f'{name}.json')
            for name in FGVC_SPLIT_SOURCES[split])
        self.class_ids: List[int] = []
        img_dir = spec.image_dir if image_dir is None else image_dir
        super().__init__(
            ann_file='',
            data_root=data_root,
            data_prefix=osp.join(folder, img_dir),
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the split file(s), map class ids and validate.

        Returns:
            list[dict]: ``dict(img_path=..., gt_label=...)`` per image.

        Raises:
            MissingFileError: If a needed split file or listed images are
                missing (a ``FileNotFoundError``).
            DataError: If a split file does not parse, the class count is
                wrong, ``trainval`` lists an image twice or the split is
                empty (a ``ValueError``).
        """
        entries, class_ids = read_fgvc_split(self.dataset_path, self.dataset,
                                             self.split)
        self.class_ids = class_ids
        data_list = [
            dict(img_path=osp.join(self.img_prefix, rel_path), gt_label=label)
            for rel_path, label in entries
        ]

        if self.check_files:
            missing = find_missing_files(d['img_path'] for d in data_list)
            if missing:
                source = ' + '.join(self.split_files)
                raise MissingFileError(
                    missing_files_message(missing, len(data_list), source,
                                          self.img_prefix))

        classes = self._metainfo.setdefault('classes',
                                            tuple(str(c) for c in class_ids))
        if len(classes) != self.num_classes:
            raise ConfigError(
                f'FGVC data set {self.dataset!r} has {self.num_classes} '
                f'classes but {len(classes)} class names were given '
                f'(metainfo / classes); expected {self.num_classes} '
                f'({docs_hint("class-count")}).')
        print_log(
            f'FGVC {self.dataset}/{self.split}: {len(data_list)} images, '
            f'{self.num_classes} classes', logger='current')
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Dataset: \t{self.dataset} ({self.full_name})',
            f'Split: \t{self.split}',
            f'Split files: \t{", ".join(self.split_files)}',
            f'Prefix of images: \t{self.img_prefix}',
        ]
