"""Check a VTAB-1k or FGVC copy on disk before training on it.

For every task (data set) and split it counts the images listed and found,
compares with the expected count, and collects labels out of range, missing
files, unreadable images (``PIL.Image.open(...).verify()``) and files that do
not parse. ``tools/dataset_converters/check_dataset.py`` is the command-line
front end.

Example:
    >>> from vapt_mm.datasets.integrity import check_vtab1k
    >>> report = check_vtab1k('data/vtab-1k', tasks=['dtd'])
    >>> print(report.format())
    >>> report.ok
    True
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from PIL import Image

from .annotation_files import (MAX_LISTED_PATHS, check_choice,
                               label_range_errors, missing_files_message,
                               parse_vtab1k_list, read_fgvc_split_file)
from .task_info import (DOCS_HINT, FGVC_DATASETS, FGVC_SPLIT_FILES,
                        VTAB1K_NUM_CLASSES, VTAB1K_SPLIT_SIZES, VTAB1K_SPLITS,
                        VTAB1K_TASKS)
from .fgvc import fgvc_class_ids


@dataclass
class SplitReport:
    """What was found for one split of one task / data set.

    Args:
        name (str): Task or data set name.
        split (str): Split name.
        ann_file (str): The list / split file.
        expected (int, optional): Expected number of images; None means
            "as many as the file lists" (VTAB-1k test, FGVC splits).
        listed (int): Images the file lists.
        found (int): Listed images that exist.
        problems (list[str]): Everything wrong with this split.
    """

    name: str
    split: str
    ann_file: str
    expected: Optional[int] = None
    listed: int = 0
    found: int = 0
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong with this split."""
        return not self.problems

    def summary(self) -> str:
        """One line: name, split, found / expected, status."""
        target = (f'expected {self.expected}' if self.expected is not None
                  else f'listed {self.listed}')
        status = 'OK' if self.ok else f'{len(self.problems)} problem(s)'
        return (f'{self.name:<22} {self.split:<15} found {self.found:>6} / '
                f'{target:<15} {status}')


@dataclass
class IntegrityReport:
    """The result of checking one benchmark copy.

    Args:
        benchmark (str): ``'vtab'`` or ``'fgvc'``.
        data_root (str): The folder that was checked.
        splits (list[SplitReport]): One entry per checked split.
        errors (list[str]): Problems that belong to no single split (missing
            folders, wrong class counts, images in two splits).
    """

    benchmark: str
    data_root: str
    splits: List[SplitReport] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def problems(self) -> List[str]:
        """All problems, the general ones first."""
        return self.errors + [p for s in self.splits for p in s.problems]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def format(self) -> str:
        """The report as printable text: a table, the problems, a summary."""
        lines = [f'Checking {self.benchmark} data in {self.data_root!r}']
        lines += [s.summary() for s in self.splits]
        problems = self.problems
        if problems:
            lines.append('Problems:')
            lines += [f'  - {p}' for p in problems]
        bad = sum(not s.ok for s in self.splits)
        lines.append(
            f'Summary: {len(self.splits)} split(s) checked, {bad} with '
            f'problems, {len(problems)} problem(s) in total: ' +
            ('OK' if self.ok else f'FAILED ({DOCS_HINT})'))
        return '\n'.join(lines)


class _ImageVerifier:
    """Opens images with PIL once per path and remembers the outcome."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._cache: Dict[str, Optional[str]] = {}

    def error(self, path: str) -> Optional[str]:
        """Return why ``path`` cannot be read, or None if it can."""
        if not self.enabled:
            return None
        if path not in self._cache:
            try:
                with Image.open(path) as img:
                    img.verify()
                self._cache[path] = None
            except Exception as err:  # PIL raises many exception types
                self._cache[path] = f'{type(err).__name__}: {err}'
        return self._cache[path]


def _check_images(report: SplitReport, paths: List[str], source: str,
                  image_root: str, verifier: _ImageVerifier) -> None:
    """Count, find missing and unreadable images of one split."""
    missing, unreadable = [], []
    for path in paths:
        if not osp.isfile(path):
            missing.append(path)
            continue
        reason = verifier.error(path)
        if reason is not None:
            unreadable.append(f'{path!r} ({reason})')
    report.listed = len(paths)
    report.found = len(paths) - len(missing)
    if missing:
        report.problems.append(
            missing_files_message(missing, len(paths), source, image_root))
    if unreadable:
        more = (f' and {len(unreadable) - MAX_LISTED_PATHS} more'
                if len(unreadable) > MAX_LISTED_PATHS else '')
        report.problems.append(
            f'{len(unreadable)} of {len(paths)} images listed in {source!r} '
            'cannot be read as images: ' +
            ', '.join(unreadable[:MAX_LISTED_PATHS]) + more +
            f'; expected valid image files ({DOCS_HINT}).')


def check_vtab1k(data_root: str,
                 tasks: Optional[Sequence[str]] = None,
                 splits: Sequence[str] = VTAB1K_SPLITS,
                 verify_images: bool = True,
                 expected_sizes: Optional[Dict[str, int]] = None
                 ) -> IntegrityReport:
    """Check a VTAB-1k copy laid out as :class:`~vapt_mm.datasets.VTAB1k`
    expects.

    Args:
        data_root (str): Folder holding the task folders.
        tasks (Sequence[str], optional): Tasks to check; all 19 if None.
        splits (Sequence[str]): Splits to check. Defaults to all four.
        verify_images (bool): Open every image with PIL and ``verify()`` it.
            Defaults to True.
        expected_sizes (dict[str, int], optional): Expected image count per
            split; defaults to :data:`VTAB1K_SPLIT_SIZES` (800 / 200 / 1000;
            ``test`` is compared with what ``test.txt`` lists).

    Returns:
        IntegrityReport: Per (task, split) counts and problems.

    Raises:
        ValueError: If a task or split name is unknown.

    Example:
        >>> report = check_vtab1k('data/vtab-1k', tasks=['eurosat'])
        >>> report.ok, report.splits[0].found
        (True, 800)
    """
    tasks = list(VTAB1K_TASKS if tasks is None else tasks)
    for task in tasks:
        check_choice('VTAB-1k task', task, VTAB1K_TASKS)
    for split in splits:
        check_choice('VTAB-1k split', split, VTAB1K_SPLITS)
    sizes = VTAB1K_SPLIT_SIZES if expected_sizes is None else expected_sizes
    report = IntegrityReport('vtab', data_root)
    if not osp.isdir(data_root):
        report.errors.append(
            f'VTAB-1k data root {data_root!r} does not exist or is not a '
            f'directory; expected a folder holding the task folders '
            f'({DOCS_HINT}).')
        return report
    verifier = _ImageVerifier(verify_images)
    for task in tasks:
        task_dir = osp.join(data_root, task)
        if not osp.isdir(task_dir):
            report.errors.append(
                f'VTAB-1k task folder {task_dir!r} is missing; expected the '
                f'images and the split files of {task!r} ({DOCS_HINT}).')
            continue
        for split in splits:
            ann_file = osp.join(task_dir, f'{split}.txt')
            split_report = SplitReport(task, split, ann_file,
                                       sizes.get(split))
            report.splits.append(split_report)
            if not osp.isfile(ann_file):
                split_report.problems.append(
                    f'Annotation file {ann_file!r} is missing; expected '
                    f"'relative/path.ext label' lines ({DOCS_HINT}).")
                continue
            try:
                entries = parse_vtab1k_list(ann_file)
            except ValueError as err:
                split_report.problems.append(str(err))
                continue
            split_report.problems += label_range_errors(
                entries, VTAB1K_NUM_CLASSES[task], ann_file)
            _check_images(split_report,
                          [osp.join(task_dir, e.path) for e in entries],
                          ann_file, task_dir, verifier)
            expected = split_report.expected
            if expected is not None and split_report.listed != expected:
                split_report.problems.append(
                    f'{ann_file!r} lists {split_report.listed} images; '
                    f'expected {expected} for split {split!r} ({DOCS_HINT}).')
    return report


def check_fgvc(data_root: str,
               datasets: Optional[Sequence[str]] = None,
               verify_images: bool = True) -> IntegrityReport:
    """Check an FGVC copy laid out as :class:`~vapt_mm.datasets.FGVC`
    expects (default folder names).

    For each data set it reads ``train.json``, ``val.json`` and
    ``test.json``, checks that the number of distinct class ids equals the
    class count, that no image is in two split files, and that every image
    exists and can be read.

    Args:
        data_root (str): Folder holding the data set folders.
        datasets (Sequence[str], optional): Data sets to check; all five if
            None.
        verify_images (bool): Open every image with PIL and ``verify()`` it.
            Defaults to True.

    Returns:
        IntegrityReport: Per (data set, split file) counts and problems.

    Raises:
        ValueError: If a data set name is unknown.

    Example:
        >>> report = check_fgvc('data/fgvc', datasets=['cub'])
        >>> [s.split for s in report.splits]
        ['train', 'val', 'test']
    """
    datasets = list(FGVC_DATASETS if datasets is None else datasets)
    for name in datasets:
        check_choice('FGVC dataset', name, tuple(FGVC_DATASETS))
    report = IntegrityReport('fgvc', data_root)
    if not osp.isdir(data_root):
        report.errors.append(
            f'FGVC data root {data_root!r} does not exist or is not a '
            f'directory; expected a folder holding the data set folders '
            f'({DOCS_HINT}).')
        return report
    verifier = _ImageVerifier(verify_images)
    for name in datasets:
        spec = FGVC_DATASETS[name]
        ds_dir = osp.join(data_root, spec.folder)
        if not osp.isdir(ds_dir):
            report.errors.append(
                f'FGVC folder {ds_dir!r} of {name!r} ({spec.full_name}) is '
                f'missing; expected train.json, val.json, test.json and the '
                f'images ({DOCS_HINT}).')
            continue
        image_root = osp.join(ds_dir, spec.image_dir)
        split_maps: Dict[str, Dict[str, int]] = {}
        for split in FGVC_SPLIT_FILES:
            path = osp.join(ds_dir, f'{split}.json')
            split_report = SplitReport(name, split, path)
            report.splits.append(split_report)
            if not osp.isfile(path):
                split_report.problems.append(
                    f'Split file {path!r} is missing; expected a JSON object '
                    f'mapping image path to class id ({DOCS_HINT}).')
                continue
            try:
                split_maps[split] = read_fgvc_split_file(path)
            except ValueError as err:
                split_report.problems.append(str(err))
                continue
            _check_images(
                split_report,
                [osp.join(image_root, p) for p in split_maps[split]], path,
                image_root, verifier)
        if split_maps:
            num_ids = len(fgvc_class_ids(split_maps))
            if num_ids != spec.num_classes:
                report.errors.append(
                    f'The split files of {name!r} in {ds_dir!r} hold '
                    f'{num_ids} distinct class ids; expected '
                    f'{spec.num_classes} for {spec.full_name} ({DOCS_HINT}).')
        owner: Dict[str, str] = {}
        for split, content in split_maps.items():
            shared = [p for p in content if p in owner]
            if shared:
                report.errors.append(
                    f'{len(shared)} images of {name!r} are listed in both '
                    f'{owner[shared[0]]}.json and {split}.json, e.g. '
                    f'{shared[0]!r}; expected disjoint splits ({DOCS_HINT}).')
            for p in content:
                owner.setdefault(p, split)
    return report
