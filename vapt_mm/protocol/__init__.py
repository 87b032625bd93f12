"""The VTAB-1k / FGVC hyper-parameter protocol (``tools/sweep.py``) and the
results table (``tools/analysis/results_table.py``).

Example:
    >>> from vapt_mm.protocol import Sweep, select_best, scaled_lr
    >>> scaled_lr(10, 64)
    2.5
"""
from vapt_mm.compat.moved_modules import moved_attribute_getter
from .hyperparameters import (DEFAULT_BASE_LRS, DEFAULT_SEEDS,
                              DEFAULT_WEIGHT_DECAYS, TIE_BREAK_RULE, scaled_lr,
                              select_best)
from .run_state import RESULT_FILE, RunStatus, run_status
from .runs import RunSpec
from .suites import SUITES, SuiteSpec, expand_tasks, get_suite
from .summary import SUMMARY_FILE, read_summary, seed_statistics
from .sweep import Sweep, TaskPlan, TaskSource

__all__ = [
    'Sweep', 'TaskPlan', 'TaskSource', 'RunSpec', 'RunStatus', 'run_status',
    'select_best', 'scaled_lr', 'seed_statistics', 'read_summary',
    'expand_tasks', 'get_suite', 'SuiteSpec', 'SUITES', 'DEFAULT_BASE_LRS',
    'DEFAULT_WEIGHT_DECAYS', 'DEFAULT_SEEDS', 'TIE_BREAK_RULE', 'RESULT_FILE',
    'SUMMARY_FILE'
]

#: Names before "benchmark" came to mean only the speed harness.
_RENAMED = {
    'BenchmarkSpec': 'vapt_mm.protocol.suites.SuiteSpec',
    'BENCHMARKS': 'vapt_mm.protocol.suites.SUITES',
    'get_benchmark': 'vapt_mm.protocol.suites.get_suite',
}

__getattr__ = moved_attribute_getter(__name__, _RENAMED)
