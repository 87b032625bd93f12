"""Backward compatibility: old import paths and names of things that moved,
kept working with a deprecation message."""
from .moved_modules import (MOVED_MODULES, install_moved_module_finder,
                            moved_attribute_getter)

__all__ = [
    'MOVED_MODULES', 'install_moved_module_finder', 'moved_attribute_getter'
]
