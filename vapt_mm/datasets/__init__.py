"""VTAB-1k and FGVC datasets, their metadata, an integrity checker and a
toy-data writer. Importing this package registers ``VTAB1k`` and ``FGVC`` in
mmpretrain's ``DATASETS`` registry."""
from .task_info import (DOCS_HINT, FGVC_DATASETS, FGVC_NUM_CLASSES,
                        FGVC_SPLITS, VTAB1K_GROUPS, VTAB1K_NUM_CLASSES,
                        VTAB1K_SPLIT_SIZES, VTAB1K_SPLITS, VTAB1K_TASK_GROUP,
                        VTAB1K_TASKS, FGVCSpec)
from .fgvc import FGVC
from .integrity import IntegrityReport, SplitReport, check_fgvc, check_vtab1k
from .toy_data import make_toy_fgvc, make_toy_vtab1k
from .vtab1k import VTAB1k

__all__ = [
    'VTAB1k', 'FGVC', 'VTAB1K_TASKS', 'VTAB1K_NUM_CLASSES', 'VTAB1K_GROUPS',
    'VTAB1K_TASK_GROUP', 'VTAB1K_SPLITS', 'VTAB1K_SPLIT_SIZES',
    'FGVC_DATASETS', 'FGVC_NUM_CLASSES', 'FGVC_SPLITS', 'FGVCSpec',
    'DOCS_HINT', 'check_vtab1k', 'check_fgvc', 'IntegrityReport',
    'SplitReport', 'make_toy_vtab1k', 'make_toy_fgvc'
]
