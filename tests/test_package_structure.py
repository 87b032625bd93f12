"""The shape of the vapt_mm package: utils/ stays small, the package does not
import the repository's tools or tests, and its modules import each other
without cycles.

Imports are read with ``ast`` from every ``vapt_mm/**/*.py``, those inside
functions included: a lazy import hides a cycle from the interpreter, not
from the design. ``from pkg import name`` is an import of the submodule
``pkg.name`` when that module exists, else of ``pkg`` (its ``__init__``).
Importing ``a.b.c`` counts as importing ``a.b.c`` only, not the
``__init__`` of ``a`` and ``a.b`` that Python runs first: otherwise every
package whose ``__init__`` imports its submodules would be a cycle.
"""
import ast
import os
import os.path as osp
from typing import Dict, List, Set, Tuple

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'vapt_mm'
UTILS_MAX_LINES = 600

#: Import cycles tolerated for now, each the set of modules of one strongly
#: connected component. An entry whose cycle is gone fails the test: delete
#: it then. None is tolerated today.
KNOWN_CYCLES: List[Set[str]] = []

#: Where an import statement was: (file, line).
Where = Tuple[str, int]


def package_modules(root: str, package: str) -> Dict[str, Tuple[str, bool]]:
    """Every module of ``package`` under ``root``: dotted name -> (file,
    whether it is a package ``__init__``)."""
    modules = {}
    for folder, dirs, files in os.walk(osp.join(root, package)):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__')))
        rel = osp.relpath(folder, root).replace(os.sep, '.')
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            if name == '__init__.py':
                modules[rel] = (osp.join(folder, name), True)
            else:
                modules[f'{rel}.{name[:-3]}'] = (osp.join(folder, name), False)
    return modules


def imports_of(path: str,
               eager_only: bool = False) -> List[Tuple[str, List[str], int]]:
    """(module as written, names imported from it, line) per statement;
    relative modules keep their leading dots. ``eager_only``: only those
    that run on import (not inside a function)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if eager_only and isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = '.' * node.level + (node.module or '')
            found.append(
                (module, [alias.name for alias in node.names], node.lineno))
    return sorted(found, key=lambda item: item[2])


def resolve(written: str, names: List[str], importer: str, is_package: bool,
            known: Set[str]) -> Set[str]:
    """The modules of ``known`` that one import statement imports."""
    level = len(written) - len(written.lstrip('.'))
    base = written[level:]
    if level:
        parts = importer.split('.')
        if not is_package:
            parts = parts[:-1]  # a module's relative base is its package
        parts = parts[:len(parts) - (level - 1)]
        base = '.'.join(parts + ([base] if base else []))
    targets = set()
    for name in names or [None]:
        if name is not None and f'{base}.{name}' in known:
            targets.add(f'{base}.{name}')
            continue
        module = base
        while module and module not in known:
            module = module.rpartition('.')[0]  # `import a.b.X` of a name
        if module:
            targets.add(module)
    return targets


def import_graph(root: str,
                 package: str,
                 eager_only: bool = False) -> Dict[str, Dict[str, Where]]:
    """importer -> {imported module of the package: where}."""
    modules = package_modules(root, package)
    known = set(modules)
    graph: Dict[str, Dict[str, Where]] = {m: {} for m in modules}
    for module, (path, is_package) in modules.items():
        for written, names, line in imports_of(path, eager_only):
            for target in resolve(written, names, module, is_package, known):
                if target != module:
                    graph[module].setdefault(target, (path, line))
    return graph


def loaded_on_import(root: str, package: str, module: str) -> Set[str]:
    """The package's modules that ``import <module>`` runs: its eager
    imports, transitively, with the ``__init__`` of every parent package."""
    graph = import_graph(root, package, eager_only=True)
    loaded, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split('.')
        for i in range(1, len(parts) + 1):
            parent = '.'.join(parts[:i])
            if parent in graph and parent not in loaded:
                loaded.add(parent)
                todo.extend(graph[parent])
    return loaded


def strongly_connected(graph: Dict[str, Dict[str, Where]]) -> List[Set[str]]:
    """Tarjan's algorithm (iterative); components of one module dropped."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def describe_cycle(graph: Dict[str, Dict[str, Where]],
                   component: Set[str]) -> str:
    """One cycle through the component, each edge with its import line."""
    start = min(component)
    # breadth-first search back to start, inside the component
    previous = {start: None}
    queue, end = [start], None
    while queue and end is None:
        node = queue.pop(0)
        for child in sorted(graph[node]):
            if child == start:
                end = node
                break
            if child in component and child not in previous:
                previous[child] = node
                queue.append(child)
    path = [end]
    while previous[path[-1]] is not None:
        path.append(previous[path[-1]])
    path = path[::-1] + [start]
    lines = []
    for a, b in zip(path, path[1:]):
        file, line = graph[a][b]
        lines.append(f'  {a} -> {b}  ({osp.relpath(file, REPO_ROOT)}:'
                     f'{line})')
    return '\n'.join(lines)


def forbidden_imports(root: str, package: str,
                      forbidden: Set[str]) -> List[str]:
    """Imports (and ``import_module('...')`` calls) of top-level names in
    ``forbidden``, as ``file:line: name``."""
    found = []
    for path, _ in package_modules(root, package).values():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or '']
            elif (isinstance(node, ast.Call) and node.args
                  and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)
                  and getattr(node.func, 'attr', getattr(node.func, 'id', ''))
                  in ('import_module', '__import__')):
                names = [node.args[0].value]
            for name in names:
                if name.split('.')[0] in forbidden:
                    found.append((osp.relpath(path, root), node.lineno,
                                  name))
    return [f'{file}:{line}: {name}' for file, line, name in sorted(found)]


def repository_top_names(root: str) -> Set[str]:
    """``tools``, ``tests`` and the module names their folders put on
    ``sys.path`` (the scripts of tools/ and the helpers of tests/)."""
    names = {'tools', 'tests'}
    for top in ('tools', 'tests'):
        for folder, _, files in os.walk(osp.join(root, top)):
            names.update(f[:-3] for f in files if f.endswith('.py'))
    names.discard('__init__')
    return names


def write_package(root, files: Dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# --- the checks on vapt_mm -------------------------------------------------


def test_utils_stays_small():
    counts = {}
    for folder, _, files in os.walk(osp.join(REPO_ROOT, PACKAGE, 'utils')):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                with open(path, encoding='utf-8') as f:
                    counts[osp.relpath(path, REPO_ROOT)] = len(
                        f.read().splitlines())
    total = sum(counts.values())
    assert total < UTILS_MAX_LINES, (
        f'vapt_mm/utils/ has {total} lines (limit {UTILS_MAX_LINES}): '
        f'{sorted(counts.items(), key=lambda kv: -kv[1])}; give a subsystem '
        'its own subpackage instead of growing utils/.')


def test_vapt_mm_does_not_import_tools_or_tests():
    forbidden = repository_top_names(REPO_ROOT)
    # the package's own top-level name cannot be taken by a tool script
    assert PACKAGE not in forbidden
    found = forbidden_imports(REPO_ROOT, PACKAGE, forbidden - {PACKAGE})
    assert not found, ('vapt_mm imports code of tools/ or tests/, which an '
                       'installed package does not have:\n' +
                       '\n'.join(found))


def test_no_import_cycle_in_vapt_mm():
    graph = import_graph(REPO_ROOT, PACKAGE)
    assert len(graph) > 50  # every module was read
    components = strongly_connected(graph)
    new = [c for c in components if c not in KNOWN_CYCLES]
    assert not new, 'Import cycles in vapt_mm:\n' + '\n\n'.join(
        describe_cycle(graph, c) for c in new)
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in components]
    assert not gone, (f'The known cycle(s) {gone} no longer exist: delete '
                      'them from KNOWN_CYCLES in tests/'
                      'test_package_structure.py.')


def test_import_vapt_mm_stays_light():
    loaded = loaded_on_import(REPO_ROOT, PACKAGE, PACKAGE)
    assert 'vapt_mm.models.necks.vapt_neck' in loaded  # registered models
    heavy = sorted(
        m for m in loaded
        if m.split('.')[1:2] in (['protocol'], ['benchmark'], ['converters']))
    assert not heavy, f'import vapt_mm loads tool-only modules: {heavy}'


# --- the checkers, on tiny synthetic packages --------------------------------


def test_cycle_through_a_lazy_import_is_found(tmp_path):
    write_package(
        tmp_path, {
            'pkg/__init__.py': 'from .base import Base\n',
            'pkg/base.py': ('class Base:\n'
                            '    def forward(self):\n'
                            '        from .runner import run\n'
                            '        return run(self)\n'),
            'pkg/runner.py': 'from .base import Base\n\n\ndef run(x):\n'
                             '    return x\n',
            'pkg/other.py': 'import pkg.base\n',
        })
    graph = import_graph(str(tmp_path), 'pkg')
    assert graph['pkg.base'] == {'pkg.runner': (
        str(tmp_path / 'pkg' / 'base.py'), 3)}
    components = strongly_connected(graph)
    assert components == [{'pkg.base', 'pkg.runner'}]
    text = describe_cycle(graph, components[0])
    assert 'pkg.base -> pkg.runner' in text and 'base.py:3' in text
    assert 'pkg.runner -> pkg.base' in text and 'runner.py:1' in text
    # the lazy import does not run on `import pkg`; importing pkg.other
    # runs pkg's __init__ first
    assert loaded_on_import(str(tmp_path), 'pkg', 'pkg') == {'pkg', 'pkg.base'}
    assert loaded_on_import(str(tmp_path), 'pkg', 'pkg.other') == {
        'pkg', 'pkg.base', 'pkg.other'}


def test_cycle_across_packages_and_absolute_imports(tmp_path):
    write_package(
        tmp_path, {
            'pkg/__init__.py': '',
            'pkg/a/__init__.py': 'from .x import X\n',
            'pkg/a/x.py': 'from pkg.b.y import Y\nX = 1\n',
            'pkg/b/__init__.py': '',
            'pkg/b/y.py': 'from ...pkg import a\nfrom ..a import X\nY = 2\n',
        })
    graph = import_graph(str(tmp_path), 'pkg')
    # `from ...pkg import a`: a subpackage, so its __init__
    assert set(graph['pkg.b.y']) == {'pkg.a'}
    assert strongly_connected(graph) == [{'pkg.a', 'pkg.a.x', 'pkg.b.y'}]


def test_package_layout_without_cycles(tmp_path):
    write_package(
        tmp_path, {
            # __init__ -> submodules; a submodule importing a sibling
            # through the package (`from . import x`) or directly
            'pkg/__init__.py': 'from . import core, extra\n'
                               'from .core import Core\n',
            'pkg/core.py': 'import os\nfrom . import helpers\n'
                           'from .helpers import helper\nCore = 1\n',
            'pkg/helpers.py': 'def helper():\n    return 1\n',
            'pkg/extra/__init__.py': 'from .tool import tool\n',
            'pkg/extra/tool.py': ('from ..core import Core\n'
                                  'import pkg.helpers\n'
                                  'from pkg.extra import __name__ as n\n'
                                  'def tool():\n    return Core\n'),
        })
    graph = import_graph(str(tmp_path), 'pkg')
    assert set(graph['pkg']) == {'pkg.core', 'pkg.extra'}
    assert set(graph['pkg.core']) == {'pkg.helpers'}
    # `from pkg.extra import <name>` imports the package's __init__ ...
    assert set(graph['pkg.extra.tool']) == {'pkg.core', 'pkg.helpers',
                                            'pkg.extra'}
    # ... which imports tool: a real cycle (tool runs while the package
    # __init__ is half done)
    assert strongly_connected(graph) == [{'pkg.extra', 'pkg.extra.tool'}]
    (tmp_path / 'pkg/extra/tool.py').write_text(
        'from ..core import Core\nimport pkg.helpers\n')
    assert strongly_connected(import_graph(str(tmp_path), 'pkg')) == []


def test_imports_of_tools_and_tests_are_found(tmp_path):
    write_package(
        tmp_path, {
            'pkg/__init__.py': 'import importlib\n',
            'pkg/ok.py': 'import os\nfrom pkg import ok\nfrom . import tools\n',
            'pkg/bad.py': ('from tools.train import main\n'
                           'def f():\n'
                           '    import tiny_models\n'
                           "    return importlib.import_module('tests.x')\n"),
        })
    found = forbidden_imports(
        str(tmp_path), 'pkg', {'tools', 'tests', 'tiny_models'})
    assert found == [
        'pkg/bad.py:1: tools.train', 'pkg/bad.py:3: tiny_models',
        'pkg/bad.py:4: tests.x'
    ]


def test_repository_top_names_include_tool_scripts_and_test_helpers():
    names = repository_top_names(REPO_ROOT)
    assert {'tools', 'tests', 'tiny_models', 'train'} <= names


@pytest.mark.parametrize('known', [set(), {'a.b'}])
def test_resolve_relative_import_from_a_package_init(known):
    # in package a.b's __init__, `from . import c` is a.b.c when that module
    # exists, else the package itself
    targets = resolve('.', ['c'], 'a.b', True, known | {'a.b.c'})
    assert targets == {'a.b.c'}
    targets = resolve('.', ['name'], 'a.b', True, {'a.b', 'a.b.c'})
    assert targets == {'a.b'}
