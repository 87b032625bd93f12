"""Side-by-side speed and memory benchmark of prompt-tuning methods.

The logic behind ``tools/analysis/benchmark.py``; see ``docs/benchmark.md``.
"""
from .benchmark_case import BenchmarkCase
from .case_builders import (build_bare_case, build_config_cases,
                            build_method_cases, load_model_cfg)
from .interleaved_timing import measure_cases_memory, time_interleaved
from .method_specs import (BACKBONE_PRESETS, FAST_PATH_MODES, MethodSpec,
                           backbone_preset, method_model_cfg, parse_method,
                           parse_methods)
from .peak_memory import measure_peak_memory, memory_method_description
from .report import format_markdown_table, summarize_rows, write_json
from .run_benchmark import DEFAULT_METHODS, run_benchmark

__all__ = [
    'BenchmarkCase', 'build_bare_case', 'build_config_cases',
    'build_method_cases', 'load_model_cfg', 'measure_cases_memory',
    'time_interleaved', 'BACKBONE_PRESETS', 'FAST_PATH_MODES', 'MethodSpec',
    'backbone_preset', 'method_model_cfg', 'parse_method', 'parse_methods',
    'measure_peak_memory', 'memory_method_description',
    'format_markdown_table', 'summarize_rows', 'write_json',
    'DEFAULT_METHODS', 'run_benchmark'
]
