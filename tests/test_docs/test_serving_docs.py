"""docs/serving.md's server section names real options and files, documents
every option of tools/serve.py, and the README links it."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _server_section() -> str:
    text = (ROOT / 'docs' / 'serving.md').read_text(encoding='utf-8')
    return text[text.index('\n## The server\n'):]


def _serve_options() -> set:
    """The options of tools/serve.py's parser, as its --help lists them
    (argparse's own --help aside)."""
    shown = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'serve.py'), '--help'],
        capture_output=True, text=True, check=True).stdout
    return set(re.findall(r'(--[a-z][\w-]*)', shown)) - {'--help'}


def test_every_option_named_exists_and_every_option_is_documented():
    named = set(re.findall(r'`(--[a-z][\w-]*)`', _server_section()))
    options = _serve_options()
    assert len(options) >= 10
    assert named - options == set(), 'options serve.py does not have'
    assert options - named == set(), 'options the docs do not explain'


def test_files_named_exist():
    section = _server_section()
    paths = re.findall(
        r'`((?:tools|vapt_mm|tests|requirements|configs)/[\w/.-]+'
        r'\.(?:py|txt))`', section)
    assert 'tools/serve.py' in paths and len(paths) >= 4
    for path in paths:
        assert (ROOT / path).is_file(), path
    names = re.findall(r'`(\w+\.py)`', section)
    assert len(names) >= 5
    for name in names:
        assert (ROOT / 'vapt_mm' / 'serving' / name).is_file(), name


def test_readme_links_the_server():
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    assert '(docs/serving.md#the-server)' in readme
    assert 'python tools/serve.py ' in readme
