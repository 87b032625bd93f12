"""Preflight: cheap checks of a merged config before the Runner starts.

``tools/train.py`` runs :func:`preflight_train` and ``tools/test.py``
:func:`preflight_test`; ``docs/errors.md`` describes what they check and
every error they raise.
"""
from .model_checks import (backbone_width, build_backbone_on_meta,
                           check_head_fits_labels, check_head_in_channels,
                           check_pretrained_backbone)
from .preflight import (check_dataloaders, load_config, preflight_test,
                        preflight_train)
from .split_labels import SplitLabels, read_split_labels

__all__ = [
    'load_config', 'preflight_train', 'preflight_test', 'check_dataloaders',
    'read_split_labels', 'SplitLabels', 'build_backbone_on_meta',
    'backbone_width', 'check_head_in_channels', 'check_head_fits_labels',
    'check_pretrained_backbone'
]
