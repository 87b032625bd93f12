"""docs/deploy.md and the method READMEs name real tools and API, and the
published numbers they show are the ones the package keeps."""
import importlib
import re
from pathlib import Path

import pytest

from vapt_mm.protocol.published_results import (PUBLISHED_SUMMARY,
                                                PUBLISHED_VTAB1K_PER_TASK)

ROOT = Path(__file__).resolve().parents[2]
PAGES = ('docs/deploy.md', 'configs/vapt/README.md', 'configs/vpt/README.md')
SECTIONS = ('Prompt files', 'Inference', 'Model index', 'Export',
            'Class-activation maps')


def _text(page: str) -> str:
    return (ROOT / page).read_text(encoding='utf-8')


def test_deploy_page_lists_the_five_sections_and_readme_links_it():
    text = _text('docs/deploy.md')
    for number, title in enumerate(SECTIONS, 1):
        anchor = title.lower().replace(' ', '-')
        assert f'{number}. [{title}](#{anchor})' in text
    for title in SECTIONS[:3]:
        assert f'\n## {title}\n' in text
    assert '(docs/deploy.md)' in _text('README.md')


@pytest.mark.parametrize('page', PAGES)
def test_tools_and_files_named_exist(page):
    text = _text(page)
    base = (ROOT / page).parent
    for path in re.findall(r'python (tools/[\w/]+\.py)', text):
        assert (ROOT / path).is_file(), f'{page}: {path}'
    for target in re.findall(r'\]\(([^)#:]+\.md)', text):
        assert (base / target).resolve().is_file(), f'{page}: {target}'


def test_python_names_in_deploy_page_import():
    text = _text('docs/deploy.md')
    found = re.findall(
        r'from (vapt_mm[\w.]*|mmpretrain[\w.]*) import '
        r'(?:\(([^)]*)\)|([\w, ]+)$)', text, flags=re.MULTILINE)
    assert len(found) >= 3
    for module, grouped, plain in found:
        names = grouped or plain
        imported = importlib.import_module(module)
        for name in re.split(r'[,\s]+', names.strip()):
            assert hasattr(imported, name), f'{module}.{name}'


def _table_rows(page: str):
    return [[cell.strip() for cell in line.strip('|').split('|')]
            for line in _text(page).splitlines()
            if line.startswith('| ') and not line.startswith('|---')]


def test_vpt_readme_numbers_are_the_published_ones():
    rows = {r[1]: r for r in _table_rows('configs/vpt/README.md')
            if r[1] in PUBLISHED_VTAB1K_PER_TASK['VPT-deep']}
    assert len(rows) == 19
    for task, row in rows.items():
        assert float(row[2]) == PUBLISHED_VTAB1K_PER_TASK['VPT-deep'][task]
        assert float(row[3]) == PUBLISHED_VTAB1K_PER_TASK['VPT-shallow'][
            task]
    published_setting = {t for t, r in rows.items() if 'published' in r[4]}
    assert published_setting == {'sun397', 'eurosat', 'dmlab'}


def test_vapt_readme_group_means_are_the_published_ones():
    names = {'VAPT': 'VAPT', 'VPT-deep': 'VPT-deep',
             'full fine-tuning': 'Full'}
    rows = {r[0]: r for r in _table_rows('configs/vapt/README.md')
            if r[0] in names}
    assert len(rows) == 3
    for label, method in names.items():
        published = PUBLISHED_SUMMARY[method]
        row = rows[label]
        assert float(row[1].rstrip(' %')) == published['tuned %']
        assert [float(v) for v in row[2:7]] == [
            published[c] for c in ('FGVC', 'Natural', 'Specialized',
                                   'Structured', 'VTAB mean')
        ]
