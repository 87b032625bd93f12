"""user_errors: the error classes, run_tool, and the docs/errors.md sections
that messages point to."""
import glob
import os.path as osp
import re

import pytest

from vapt_mm.utils.user_errors import (CheckpointFormatError, ConfigError,
                                       ConfigKeyError, ConfigTypeError,
                                       DataError, MissingFileError,
                                       MissingPackageError, UserError,
                                       errors_doc, run_tool)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ERRORS_MD = osp.join(REPO_ROOT, 'docs', 'errors.md')


@pytest.mark.parametrize('cls,builtin', [
    (ConfigError, ValueError), (ConfigKeyError, KeyError),
    (ConfigTypeError, TypeError), (DataError, ValueError),
    (MissingFileError, FileNotFoundError), (CheckpointFormatError, ValueError),
    (CheckpointFormatError, RuntimeError), (MissingPackageError, ImportError)
])
def test_classes_are_user_errors_and_builtins(cls, builtin):
    error = cls('what\n  where: x')
    assert isinstance(error, UserError) and isinstance(error, builtin)
    # one message argument, kept as it is (also for KeyError)
    assert str(error) == 'what\n  where: x'
    assert str(type(error)(str(error))) == str(error)


def test_run_tool_exit_codes_and_output(monkeypatch, capsys):
    monkeypatch.delenv('VAPT_MM_DEBUG', raising=False)
    monkeypatch.setattr('sys.argv', ['tool.py'])
    assert run_tool(lambda: None, 'tool.py') == 0
    assert run_tool(lambda: {'accuracy/top1': 1.0}, 'tool.py') == 0
    assert run_tool(lambda: 3, 'tool.py') == 3  # the tool's own code

    def fails():
        raise DataError('bad file')

    assert run_tool(fails, 'tool.py') == 1
    err = capsys.readouterr().err
    assert 'tool.py: error: bad file' in err
    assert 'Traceback' not in err
    assert run_tool(fails, 'tool.py', debug=True) == 1
    assert 'Traceback' in capsys.readouterr().err
    monkeypatch.setenv('VAPT_MM_DEBUG', '1')
    assert run_tool(fails, 'tool.py') == 1
    assert 'Traceback' in capsys.readouterr().err

    def bug():
        raise ValueError('not a user error')

    with pytest.raises(ValueError, match='not a user error'):
        run_tool(bug, 'tool.py')


def named_sections():
    """Every docs/errors.md section named in vapt_mm/ and tools/."""
    pattern = re.compile(
        r"docs/errors\.md#([a-z0-9-]+)|(?:errors_doc|docs_hint)\("
        r"['\"]([a-z0-9-]+)['\"]\)")
    found = {}
    for folder in ('vapt_mm', 'tools'):
        for path in glob.glob(osp.join(REPO_ROOT, folder, '**', '*.py'),
                              recursive=True):
            with open(path, encoding='utf-8') as f:
                for match in pattern.finditer(f.read()):
                    section = match.group(1) or match.group(2)
                    found.setdefault(section, osp.relpath(path, REPO_ROOT))
    return found


def test_every_section_named_in_the_code_exists():
    with open(ERRORS_MD, encoding='utf-8') as f:
        anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', f.read()))
    named = named_sections()
    # the sections the preflight and the datasets point to
    assert {'data-root', 'annotation-files', 'empty-annotation-file',
            'label-range', 'class-count', 'in-channels', 'pretrained-missing',
            'pretrained-mismatch', 'checkpoint-missing'} <= set(named)
    missing = {s: p for s, p in named.items() if s not in anchors}
    assert not missing, f'sections named in the code but not in {ERRORS_MD}'
    assert errors_doc('label-range') == 'docs/errors.md#label-range'


def test_links_inside_errors_md_resolve():
    with open(ERRORS_MD, encoding='utf-8') as f:
        text = f.read()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', text))
    links = set(re.findall(r'\]\(#([a-z0-9-]+)\)', text))
    assert links and links <= anchors, links - anchors
