"""Read and validate the annotation files of VTAB-1k and FGVC.

The datasets (and the preflight of ``tools/train.py``) raise the first
problem these helpers find; the integrity checker collects all of them.
Every message names the file (and line, key or value) at fault, says what
was expected and ends with ``see docs/datasets.md`` and the section of
``docs/errors.md`` that explains the error. The errors are
:class:`~vapt_mm.utils.user_errors.UserError` subclasses (also
``ValueError`` / ``FileNotFoundError``), so the tools print them without a
traceback.

Example:
    >>> from vapt_mm.datasets.annotation_files import parse_vtab1k_list
    >>> entries = parse_vtab1k_list('data/vtab-1k/dtd/train800.txt')
    >>> entries[0]
    ListEntry(path='images/banded_0002.jpg', label=0, line=1)
"""
import json
import os.path as osp
from typing import Dict, Iterable, List, NamedTuple, Sequence

from ..utils.user_errors import ConfigError, DataError, MissingFileError
from .task_info import docs_hint

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
        ConfigError: Naming the value and listing the valid ones (a
            ``ValueError``).

    Example:
        >>> check_choice('VTAB-1k split', 'train', ('train800', 'test'))
        Traceback (most recent call last):
        ConfigError: Unknown VTAB-1k split 'train'; expected one of: ...
    """
    if value not in valid:
        raise ConfigError(f'Unknown {kind} {value!r}; expected one of: '
                          f'{", ".join(valid)} ({docs_hint("unknown-name")}).')


def check_dir(path: str, what: str, expected: str) -> None:
    """Raise if ``path`` is not an existing directory.

    Args:
        path (str): The directory.
        what (str): What the directory is, e.g. ``'VTAB-1k data root'``.
        expected (str): What it should hold.

    Raises:
        MissingFileError: Naming the path and what was expected there (a
            ``FileNotFoundError``).

    Example:
        >>> check_dir('data/vtab-1k', 'VTAB-1k data root',
        ...           'the 19 task folders')
    """
    if not osp.isdir(path):
        raise MissingFileError(
            f'{what} {path!r} does not exist or is not a directory; '
            f'expected a folder holding {expected} '
            f'({docs_hint("data-root")}).')


def check_file(path: str, what: str, expected: str) -> None:
    """Raise if ``path`` is not an existing file.

    Args:
        path (str): The file.
        what (str): What the file is, e.g. ``'VTAB-1k annotation file'``.
        expected (str): What the file should contain.

    Raises:
        MissingFileError: Naming the path and what was expected (a
            ``FileNotFoundError``).

    Example:
        >>> check_file('data/vtab-1k/dtd/test.txt', 'annotation file',
        ...            "'<path> <label>' lines")
    """
    if not osp.isfile(path):
        raise MissingFileError(
            f'{what} {path!r} is missing; expected a file with {expected} '
            f'({docs_hint("annotation-files")}).')


def check_not_empty(count: int, source: str, expected: str) -> None:
    """Raise if an annotation file lists nothing.

    An empty list would only fail later, deep inside mmengine
    (``need at least one array to concatenate``).

    Args:
        count (int): How many samples ``source`` lists.
        source (str): The annotation / split file(s).
        expected (str): What the file should contain.

    Raises:
        DataError: Naming the file (a ``ValueError``).

    Example:
        >>> check_not_empty(0, 'data/vtab-1k/dtd/test.txt',
        ...                 "'<path> <label>' lines")
        Traceback (most recent call last):
        DataError: Annotation file 'data/vtab-1k/dtd/test.txt' lists no ...
    """
    if count == 0:
        raise DataError(
            f'Annotation file {source!r} lists no images; expected '
            f'{expected} ({docs_hint("empty-annotation-file")}).')


def parse_vtab1k_list(ann_file: str,
                      skip_blank_lines: bool = True) -> List[ListEntry]:
    """Parse a VTAB-1k list file of ``relative/path.ext label`` lines.

    The label is the text after the last run of whitespace, so paths may
    contain spaces. mmpretrain's ``CustomDataset`` reads the same format.

    Args:
        ann_file (str): Path of the list file.
        skip_blank_lines (bool): Skip blank lines (VTAB1k does); False
            refuses them (``CustomDataset`` cannot read them). Defaults to
            True.

    Returns:
        list[ListEntry]: One entry per non-blank line, in file order.

    Raises:
        DataError: For the first line that does not parse, naming the file,
            the line number and the line (a ``ValueError``).

    Example:
        >>> parse_vtab1k_list('data/vtab-1k/eurosat/val200.txt')[:1]
        [ListEntry(path='images/xxx.jpg', label=3, line=1)]
    """
    entries = []
    with open(ann_file, encoding='utf-8-sig') as f:
        for line_no, raw in enumerate(f, start=1):
            text = raw.strip()
            if not text:
                if skip_blank_lines:
                    continue
                raise DataError(
                    f'{ann_file}, line {line_no}: blank line; expected '
                    "'<relative/path.ext> <integer label>' on every line "
                    f'({docs_hint("annotation-files")}).')
            parts = text.rsplit(maxsplit=1)
            label = None
            if len(parts) == 2:
                try:
                    label = int(parts[1])
                except ValueError:
                    label = None
            if label is None:
                raise DataError(
                    f'{ann_file}, line {line_no}: cannot parse {text!r}; '
                    "expected '<relative/path.ext> <integer label>' "
                    f'({docs_hint("annotation-files")}).')
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
        docs/datasets.md and docs/errors.md#label-range)
    """
    return [
        f'{ann_file}, line {e.line}: label {e.label} is outside '
        f'[0, {num_classes}) (num_classes={num_classes}; '
        f'{docs_hint("label-range")})'
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
        the paths in the file to be relative to 'r' (see docs/datasets.md and
        docs/errors.md#missing-images).
    """
    shown = ', '.join(repr(p) for p in missing[:MAX_LISTED_PATHS])
    more = (f' and {len(missing) - MAX_LISTED_PATHS} more'
            if len(missing) > MAX_LISTED_PATHS else '')
    return (f'{len(missing)} of {total} images listed in {source!r} are '
            f'missing: {shown}{more}; expected the paths in the file to be '
            f'relative to {image_root!r} ({docs_hint("missing-images")}).')


def read_fgvc_split_file(path: str) -> Dict[str, int]:
    """Read one of the VPT authors' FGVC split files.

    The file is a JSON object mapping an image path (relative to the data
    set's image folder) to an integer class id.

    Args:
        path (str): The ``train.json`` / ``val.json`` / ``test.json`` file.

    Returns:
        dict[str, int]: Image path to original class id, in file order.

    Raises:
        DataError: If the file is not valid JSON (naming the line), not an
            object, or a value is not an integer (naming the key); a
            ``ValueError``.

    Example:
        >>> read_fgvc_split_file('data/fgvc/CUB_200_2011/val.json')
        {'001.Black_footed_Albatross/Black_Footed_Albatross_0001.jpg': 1, ...}
    """
    expected = ('a JSON object mapping "relative/image/path.jpg" to an '
                'integer class id')
    hint = docs_hint('annotation-files')
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise DataError(
                f'{path}, line {err.lineno}: cannot parse JSON ({err.msg}); '
                f'expected {expected} ({hint}).') from None
    if not isinstance(data, dict):
        raise DataError(f'{path}: found a JSON {type(data).__name__}; '
                        f'expected {expected} ({hint}).')
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(
                f'{path}: class id of {key!r} is {value!r}; expected '
                f'{expected} ({hint}).')
    return data
