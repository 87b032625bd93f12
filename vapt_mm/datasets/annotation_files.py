"""Read and validate the annotation files of VTAB-1k and FGVC.

The datasets raise the first problem these helpers find; the integrity
checker collects all of them. Every message names the file (and line, key
or value) at fault, says what was expected and ends with
``see docs/datasets.md``.

Example:
    >>> from vapt_mm.datasets.annotation_files import parse_vtab1k_list
    >>> entries = parse_vtab1k_list('data/vtab-1k/dtd/train800.txt')
    >>> entries[0]
    ListEntry(path='images/banded_0002.jpg', label=0, line=1)
"""
import json
import os.path as osp
from typing import Dict, Iterable, List, NamedTuple, Sequence

from .task_info import DOCS_HINT

#: How many missing paths an error message names before it only counts.
MAX_LISTED_PATHS = 5


class ListEntry(NamedTuple):
    """One line of a VTAB-1k list file.

    Args:
        path (str): Image path relative to the task folder.
        label (int): Class index as written in the file.
        line (int): 1-based line number in the file.
    """

    path: str
    label: int
    line: int


def check_choice(kind: str, value: str, valid: Sequence[str]) -> None:
    """Raise if ``value`` is not one of ``valid``.

    Args:
        kind (str): What the value names, e.g. ``'VTAB-1k task'``.
        value (str): The value given by the user.
        valid (Sequence[str]): The accepted values.

    Raises:
        ValueError: Naming the value and listing the valid ones.

    Example:
        >>> check_choice('VTAB-1k split', 'train', ('train800', 'test'))
        Traceback (most recent call last):
        ValueError: Unknown VTAB-1k split 'train'; expected one of: ...
    """
    if value not in valid:
        raise ValueError(f'Unknown {kind} {value!r}; expected one of: '
                         f'{", ".join(valid)} ({DOCS_HINT}).')


def check_dir(path: str, what: str, expected: str) -> None:
    """Raise if ``path`` is not an existing directory.

    Args:
        path (str): The directory.
        what (str): What the directory is, e.g. ``'VTAB-1k data root'``.
        expected (str): What it should hold.

    Raises:
        FileNotFoundError: Naming the path and what was expected there.

    Example:
        >>> check_dir('data/vtab-1k', 'VTAB-1k data root',
        ...           'the 19 task folders')
    """
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'{what} {path!r} does not exist or is not a directory; '
            f'expected a folder holding {expected} ({DOCS_HINT}).')


def check_file(path: str, what: str, expected: str) -> None:
    """Raise if ``path`` is not an existing file.

    Args:
        path (str): The file.
        what (str): What the file is, e.g. ``'VTAB-1k annotation file'``.
        expected (str): What the file should contain.

    Raises:
        FileNotFoundError: Naming the path and what was expected.

    Example:
        >>> check_file('data/vtab-1k/dtd/test.txt', 'annotation file',
        ...            "'<path> <label>' lines")
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path!r} is missing; expected a '
                                f'file with {expected} ({DOCS_HINT}).')


def parse_vtab1k_list(ann_file: str) -> List[ListEntry]:
    """Parse a VTAB-1k list file of ``relative/path.ext label`` lines.

    The label is the text after the last run of whitespace, so paths may
    contain spaces. Blank lines are skipped.

    Args:
        ann_file (str): Path of the list file.

    Returns:
        list[ListEntry]: One entry per non-blank line, in file order.

    Raises:
        ValueError: For the first line that does not parse, naming the file,
            the line number and the line.

    Example:
        >>> parse_vtab1k_list('data/vtab-1k/eurosat/val200.txt')[:1]
        [ListEntry(path='images/xxx.jpg', label=3, line=1)]
    """
    entries = []
    with open(ann_file, encoding='utf-8-sig') as f:
        for line_no, raw in enumerate(f, start=1):
            text = raw.strip()
            if not text:
                continue
            parts = text.rsplit(maxsplit=1)
            label = None
            if len(parts) == 2:
                try:
                    label = int(parts[1])
                except ValueError:
                    label = None
            if label is None:
                raise ValueError(
                    f'{ann_file}, line {line_no}: cannot parse {text!r}; '
                    "expected '<relative/path.ext> <integer label>' "
                    f'({DOCS_HINT}).')
            entries.append(ListEntry(parts[0], label, line_no))
    return entries


def label_range_errors(entries: Iterable[ListEntry], num_classes: int,
                       ann_file: str) -> List[str]:
    """Describe every label outside ``[0, num_classes)``.

    Args:
        entries (Iterable[ListEntry]): Parsed lines of ``ann_file``.
        num_classes (int): Number of classes of the task.
        ann_file (str): The file the entries came from (for the messages).

    Returns:
        list[str]: One message per bad label, empty when all are in range.

    Example:
        >>> errors = label_range_errors([ListEntry('a.jpg', 12, 3)], 10,
        ...                             'x.txt')
        >>> print(errors[0])
        x.txt, line 3: label 12 is outside [0, 10) (num_classes=10; see
        docs/datasets.md)
    """
    return [
        f'{ann_file}, line {e.line}: label {e.label} is outside '
        f'[0, {num_classes}) (num_classes={num_classes}; {DOCS_HINT})'
        for e in entries if not 0 <= e.label < num_classes
    ]


def find_missing_files(paths: Iterable[str]) -> List[str]:
    """Return the paths that are not existing files (``os.path.isfile``).

    Args:
        paths (Iterable[str]): Absolute or working-directory relative paths.

    Returns:
        list[str]: The missing ones, in input order.

    Example:
        >>> find_missing_files(['setup.py', 'nope.jpg'])
        ['nope.jpg']
    """
    return [p for p in paths if not osp.isfile(p)]


def missing_files_message(missing: Sequence[str], total: int, source: str,
                          image_root: str) -> str:
    """Build the error message for images that a list file names but that
    do not exist.

    Args:
        missing (Sequence[str]): The missing paths.
        total (int): How many images the list file names.
        source (str): The list / split file that names them.
        image_root (str): The folder the paths are relative to.

    Returns:
        str: The message, naming the first :data:`MAX_LISTED_PATHS` paths
        and the count.

    Example:
        >>> print(missing_files_message(['r/a.jpg'], 10, 'r/test.txt', 'r'))
        1 of 10 images listed in 'r/test.txt' are missing: 'r/a.jpg'; expected
        the paths in the file to be relative to 'r' (see docs/datasets.md).
    """
    shown = ', '.join(repr(p) for p in missing[:MAX_LISTED_PATHS])
    more = (f' and {len(missing) - MAX_LISTED_PATHS} more'
            if len(missing) > MAX_LISTED_PATHS else '')
    return (f'{len(missing)} of {total} images listed in {source!r} are '
            f'missing: {shown}{more}; expected the paths in the file to be '
            f'relative to {image_root!r} ({DOCS_HINT}).')


def read_fgvc_split_file(path: str) -> Dict[str, int]:
    """Read one of the VPT authors' FGVC split files.

    The file is a JSON object mapping an image path (relative to the data
    set's image folder) to an integer class id.

    Args:
        path (str): The ``train.json`` / ``val.json`` / ``test.json`` file.

    Returns:
        dict[str, int]: Image path to original class id, in file order.

    Raises:
        ValueError: If the file is not valid JSON (naming the line), not an
            object, or a value is not an integer (naming the key).

    Example:
        >>> read_fgvc_split_file('data/fgvc/CUB_200_2011/val.json')
        {'001.Black_footed_Albatross/Black_Footed_Albatross_0001.jpg': 1, ...}
    """
    expected = ('a JSON object mapping "relative/image/path.jpg" to an '
                'integer class id')
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(
                f'{path}, line {err.lineno}: cannot parse JSON ({err.msg}); '
                f'expected {expected} ({DOCS_HINT}).') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: found a JSON {type(data).__name__}; '
                         f'expected {expected} ({DOCS_HINT}).')
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f'{path}: class id of {key!r} is {value!r}; expected '
                f'{expected} ({DOCS_HINT}).')
    return data
