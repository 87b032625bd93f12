"""vapt_mm: visual (adaptive) prompt tuning as an mmpretrain plugin.

Importing the package registers every model, dataset, hook and optimizer
wrapper in mmpretrain's registries, the prompt-file loader in mmengine's
``CheckpointLoader`` and the VAPT/VPT model index in mmpretrain's
``ModelHub`` (:mod:`vapt_mm.apis`), so a config only needs::

    custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

The tool-only subsystems (``vapt_mm.protocol``, ``vapt_mm.benchmark``,
``vapt_mm.converters``) are not imported here, so ``import vapt_mm`` stays
light. Modules that moved keep their old import paths, with a
``DeprecationWarning`` (see :mod:`vapt_mm.compat.moved_modules`).
"""
from .compat.moved_modules import install_moved_module_finder

install_moved_module_finder()

from . import datasets, engine, models, utils  # noqa: E402,F401
# after engine: wraps the local checkpoint loader engine registers
from . import apis  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
