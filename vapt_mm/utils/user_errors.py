"""Errors a user can act on, and how the command-line tools print them.

An *expected user error* (a missing file, a config value that does not fit,
a checkpoint that does not match the model) is raised as a
:class:`UserError`. Its message says what is wrong, where (the file, key or
value) and how to fix it. The tools catch it in :func:`run_tool` and print
that message as a short block without a traceback; ``--debug`` or the
environment variable ``VAPT_MM_DEBUG=1`` shows the traceback too. Every
other exception is a programming error and keeps its traceback.

The subclasses also derive from the matching built-in exception
(``ValueError``, ``FileNotFoundError``, ...), so code that catches those
keeps working. Their constructors take one message string, because
mmengine's registry re-raises build errors as ``type(e)(message)``.
"""
import argparse
import os
import sys
import traceback
from typing import Callable, List, Optional

__all__ = [
    'add_debug_argument',
    'UserError', 'ConfigError', 'ConfigKeyError', 'ConfigTypeError',
    'DataError', 'MissingFileError', 'CheckpointError',
    'CheckpointFormatError', 'MissingPackageError', 'user_message',
    'errors_doc', 'debug_enabled', 'run_tool', 'DEBUG_ENV', 'ERRORS_DOC'
]

#: Environment variable that makes :func:`run_tool` show tracebacks.
DEBUG_ENV = 'VAPT_MM_DEBUG'

#: The docs page that explains every user error; messages name a section.
ERRORS_DOC = 'docs/errors.md'


class UserError(Exception):
    """An error the user can fix; the tools print it without a traceback.

    Example:
        >>> raise UserError(user_message(
        ...     'the data root does not exist', where='data/vtab-1k',
        ...     fix='download VTAB-1k or pass --cfg-options data_root=...'))
        Traceback (most recent call last):
        ...
        vapt_mm.utils.user_errors.UserError: the data root does not exist
    """


class ConfigError(UserError, ValueError):
    """A config value that cannot work (a ``ValueError``)."""


class ConfigKeyError(ConfigError, KeyError):
    """A config key (or environment variable) that is needed but not set.

    Also a ``KeyError``; unlike ``KeyError`` its ``str()`` is the message
    itself, not its quoted ``repr``.

    Example:
        >>> str(ConfigKeyError('the config has no test_dataloader'))
        'the config has no test_dataloader'
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class ConfigTypeError(ConfigError, TypeError):
    """A config value of a kind that cannot work (also a ``TypeError``),
    e.g. a backbone prompts cannot attach to."""


class DataError(UserError, ValueError):
    """A data set file or label that cannot be used (a ``ValueError``)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the run needs does not exist (a
    ``FileNotFoundError``): data root, annotation file, pretrained weights,
    checkpoint, config."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is unreadable or does not fit the model."""


class CheckpointFormatError(CheckpointError, ValueError):
    """A checkpoint whose content cannot be used: not a PyTorch / numpy
    file, not the expected layout, or not fitting the backbone (also a
    ``ValueError``, which the converters and the pretrained check raised
    before)."""


class MissingPackageError(UserError, ImportError):
    """An optional package a command needs is not installed (an
    ``ImportError``); the message names the ``pip install`` to run."""


def user_message(what: str,
                 where: Optional[str] = None,
                 fix: Optional[str] = None,
                 docs: Optional[str] = None) -> str:
    """Compose the message of a :class:`UserError`.

    Args:
        what (str): What is wrong, one sentence.
        where (str, optional): The file, key or value concerned.
        fix (str, optional): What to do about it.
        docs (str, optional): The docs page (and section) explaining it.

    Returns:
        str: ``what`` followed by indented ``where:``, ``fix:`` and ``see:``
        lines for the parts given.

    Example:
        >>> print(user_message('no such file', where='a.pth', fix='check'))
        no such file
          where: a.pth
          fix:   check
    """
    lines = [what]
    if where:
        lines.append(f'  where: {where}')
    if fix:
        lines.append(f'  fix:   {fix}')
    if docs:
        lines.append(f'  see:   {docs}')
    return '\n'.join(lines)


def errors_doc(section: str) -> str:
    """The address of a section of ``docs/errors.md``, for messages.

    Args:
        section (str): The section's anchor, e.g. ``'label-range'``.

    Returns:
        str: ``'docs/errors.md#<section>'``.

    Example:
        >>> errors_doc('in-channels')
        'docs/errors.md#in-channels'
    """
    return f'{ERRORS_DOC}#{section}'


def debug_enabled(argv: Optional[List[str]] = None) -> bool:
    """Whether tracebacks of user errors are wanted.

    True when ``--debug`` is among ``argv`` (default ``sys.argv``) or the
    environment variable ``VAPT_MM_DEBUG`` is set to a non-empty value other
    than ``0``.

    Args:
        argv (list[str], optional): Command-line arguments.

    Example:
        >>> debug_enabled(['train.py', 'cfg.py', '--debug'])
        True
    """
    argv = sys.argv if argv is None else argv
    env = os.environ.get(DEBUG_ENV, '')
    return '--debug' in argv or env not in ('', '0')


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Give a tool's parser the ``--debug`` flag that :func:`run_tool` reads.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_debug_argument(parser)
        >>> parser.parse_args(['--debug']).debug
        True
    """
    parser.add_argument(
        '--debug',
        action='store_true',
        help=f'show the traceback of errors a user can fix (also with '
        f'{DEBUG_ENV}=1); see docs/errors.md')


def run_tool(main: Callable[[], object],
             tool: str,
             debug: bool = False) -> int:
    """Run a tool's ``main`` and turn user errors into a short message.

    Args:
        main (callable): The tool's main function (no arguments).
        tool (str): The tool's name for the message, e.g. ``'train.py'``.
        debug (bool): Show the traceback of user errors too (as
            :func:`debug_enabled` does for ``--debug`` in ``sys.argv`` or
            ``VAPT_MM_DEBUG=1``). Defaults to False.

    Returns:
        int: ``main``'s return value when it is an int (a tool's own exit
        code), else 0; 1 after a :class:`UserError` (printed to stderr as
        ``<tool>: error: <message>`` plus a hint on ``--debug``). Any other
        exception propagates with its traceback.

    Example:
        >>> import sys
        >>> sys.exit(run_tool(main, 'train.py'))  # doctest: +SKIP
    """
    debug = debug or debug_enabled()
    try:
        result = main()
    except UserError as error:
        if debug:
            traceback.print_exc()
        message = str(error)
        print(f'\n{tool}: error: {message}', file=sys.stderr)
        if not debug:
            print(
                f'(a traceback is shown with --debug or {DEBUG_ENV}=1)',
                file=sys.stderr)
        return 1
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0
