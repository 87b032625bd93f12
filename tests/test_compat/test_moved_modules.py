"""Old import paths of moved modules and names: they keep working and warn
with the new path (vapt_mm.compat.moved_modules)."""
import importlib
import os.path as osp
import re
import sys
import warnings

import pytest

import vapt_mm
import vapt_mm.utils
from vapt_mm.compat import moved_modules
from vapt_mm.compat.moved_modules import (MOVED_MODULES, MovedModuleFinder,
                                         install_moved_module_finder)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def fresh_old_paths(monkeypatch):
    """Forget every old path imported so far (restored afterwards), so each
    test sees the first import of an old path and its warning."""
    for old in MOVED_MODULES:
        monkeypatch.delitem(sys.modules, old, raising=False)
        parent, _, child = old.rpartition('.')
        module = sys.modules.get(parent)
        if module is not None and child in vars(module):
            monkeypatch.delattr(module, child)


def is_package(name):
    return hasattr(importlib.import_module(name), '__path__')


@pytest.mark.parametrize('old,new', sorted(MOVED_MODULES.items()))
def test_every_old_module_path_imports_the_new_module(fresh_old_paths, old,
                                                      new):
    with pytest.deprecated_call(match=re.escape(f'{old} moved to {new}')):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    if is_package(new):
        # an alias package: the new package's public names, same objects
        assert module is not target and module.__name__ == old
        for name in target.__all__:
            assert getattr(module, name) is getattr(target, name), name
    else:
        assert module is target
        # the module keeps its own identity for tools that read it
        assert target.__name__ == new and target.__spec__.name == new


def test_submodules_of_an_old_package_path(fresh_old_paths):
    with pytest.deprecated_call(match='vapt_mm.protocol.suites'):
        from vapt_mm.utils.sweep import benchmarks  # renamed submodule
    with pytest.deprecated_call(match='vapt_mm.protocol.runs'):
        import vapt_mm.utils.sweep.runs as runs
    import vapt_mm.protocol.runs
    import vapt_mm.protocol.suites
    assert benchmarks is vapt_mm.protocol.suites
    assert runs is vapt_mm.protocol.runs
    with pytest.raises(AttributeError, match='no attribute'):
        vapt_mm.utils.sweep.not_a_name
    with pytest.raises(ImportError):
        import vapt_mm.utils.sweep.not_a_module  # noqa: F401


def test_warning_points_at_the_import_line(fresh_old_paths):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        import vapt_mm.utils.dist_cpu  # noqa: F401
        vapt_mm.utils.is_cpu_only
    assert [w.category for w in caught] == [DeprecationWarning] * 2
    assert {w.filename for w in caught} == {__file__}


@pytest.mark.parametrize('name,new', [
    ('convert_google_vit', 'vapt_mm.converters.convert_google_vit'),
    ('convert_timm_vit', 'vapt_mm.converters.convert_timm_vit'),
    ('save_backbone_state_dict',
     'vapt_mm.converters.save_backbone_state_dict'),
    ('load_torch_checkpoint', 'vapt_mm.converters.load_torch_checkpoint'),
    ('setup_cpu_distributed', 'vapt_mm.engine.dist_cpu.setup_cpu_distributed'),
    ('is_cpu_only', 'vapt_mm.engine.dist_cpu.is_cpu_only'),
    ('check_pretrained_checkpoint',
     'vapt_mm.models.utils.check_pretrained_checkpoint'),
])
def test_names_vapt_mm_utils_exported(name, new):
    module, _, attr = new.rpartition('.')
    with pytest.deprecated_call(match=re.escape(new)):
        value = getattr(vapt_mm.utils, name)
    assert value is getattr(importlib.import_module(module), attr)


def test_old_submodule_attributes_of_vapt_mm_utils(fresh_old_paths):
    import vapt_mm.converters
    with pytest.deprecated_call(match='vapt_mm.converters'):
        assert (vapt_mm.utils.checkpoint_conversion.convert_timm_vit is
                vapt_mm.converters.convert_timm_vit)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        vapt_mm.utils.nothing


def test_suite_names_that_said_benchmark():
    from vapt_mm.protocol import suites
    from vapt_mm.protocol.config_reader import read_sweep_config
    with pytest.deprecated_call(match='vapt_mm.protocol.suites.SuiteSpec'):
        from vapt_mm.protocol import BenchmarkSpec
    with pytest.deprecated_call(match='vapt_mm.protocol.suites.get_suite'):
        get_benchmark = suites.get_benchmark
    with pytest.deprecated_call(match='vapt_mm.protocol.suites.SUITES'):
        assert suites.BENCHMARKS is suites.SUITES
    assert BenchmarkSpec is suites.SuiteSpec
    assert get_benchmark('FGVC') is suites.SUITES['FGVC']
    info = read_sweep_config(
        osp.join(REPO_ROOT, 'configs/vapt/vit-b16_vtab-eurosat.py'))
    with pytest.deprecated_call(match='SweepConfigInfo.suite'):
        assert info.benchmark is info.suite is suites.SUITES['VTAB1k']


def test_new_rows_work_and_a_stale_old_folder_does_not_shadow(
        tmp_path, monkeypatch):
    # a package whose module moved, leaving its old folder with only a
    # __pycache__ (what `git mv` leaves in a working copy)
    pkg = tmp_path / 'movedpkg'
    (pkg / 'old' / '__pycache__').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'new.py').write_text('VALUE = 7\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    finder = MovedModuleFinder({'movedpkg.old': 'movedpkg.new'})
    monkeypatch.setattr(sys, 'meta_path', [finder, *sys.meta_path])
    for name in ('movedpkg', 'movedpkg.old', 'movedpkg.new'):
        monkeypatch.delitem(sys.modules, name, raising=False)

    with pytest.deprecated_call(match='movedpkg.old moved to movedpkg.new'):
        old = importlib.import_module('movedpkg.old')
    assert old is importlib.import_module('movedpkg.new') and old.VALUE == 7


def test_finder_is_installed_once_and_first():
    install_moved_module_finder()
    install_moved_module_finder()
    ours = [f for f in sys.meta_path if f is moved_modules._FINDER]
    assert len(ours) == 1
    # ahead of the path finder, which would find stale old folders
    index = sys.meta_path.index(ours[0])
    path_finders = [
        i for i, f in enumerate(sys.meta_path)
        if getattr(f, '__name__', '') == 'PathFinder'
    ]
    assert path_finders and index < min(path_finders)
