"""The method and architecture pages name real code, and the repository
stands on its own (no pointers to files outside it)."""
import importlib
import os.path as osp
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_PAGES = ('docs/method.md', 'docs/architecture.md')
DOTTED = re.compile(r'`(vapt_mm(?:\.[A-Za-z_]\w*)+)`')


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted``, then getattr the rest.

    Example:
        >>> resolve('vapt_mm.models.necks.VPTNeck').__name__
        'VPTNeck'
    """
    parts = dotted.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize('page', CODE_PAGES)
def test_every_dotted_name_a_page_cites_imports(page):
    text = (ROOT / page).read_text(encoding='utf-8')
    names = sorted(set(DOTTED.findall(text)))
    assert len(names) >= 10, f'{page} should map the method to real code'
    broken = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as error:
            broken.append(f'{name}: {error}')
    assert not broken, f'{page} cites names that do not exist:\n' + \
        '\n'.join(broken)


def test_resolve_fails_on_a_name_that_does_not_exist():
    with pytest.raises(AttributeError):
        resolve('vapt_mm.models.necks.NoSuchNeck')


def test_files_the_pages_cite_exist():
    for page in CODE_PAGES:
        text = (ROOT / page).read_text(encoding='utf-8')
        for path in re.findall(r'`((?:tests|tools|vapt_mm|configs)/[\w/.-]+'
                               r'\.(?:py|sh|md))(?:::\w+)?`', text):
            assert (ROOT / path).is_file(), f'{page} cites missing {path}'


def test_nothing_points_outside_the_repository():
    offenders = []
    places = [ROOT / 'README.md']
    for folder in ('vapt_mm', 'docs', 'tools', 'configs'):
        places += [p for p in (ROOT / folder).rglob('*')
                   if p.suffix in ('.py', '.md', '.sh', '.yml')]
    for path in places:
        text = path.read_text(encoding='utf-8')
        for needle in ('VAPT_SPEC', '../shared', 'DESIGN.md'):
            if needle in text:
                offenders.append(f'{osp.relpath(path, ROOT)}: {needle}')
    assert not offenders, offenders
