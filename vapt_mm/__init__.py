"""vapt_mm: visual (adaptive) prompt tuning as an mmpretrain plugin.

Importing the package registers every model, dataset, hook and optimizer
wrapper in mmpretrain's registries, so a config only needs::

    custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)
"""
from . import datasets, engine, models, utils  # noqa: F401
from .version import __version__

__all__ = ['__version__']
