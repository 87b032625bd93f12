"""Small helpers: parameter counts, user errors, atomic file writes, and
the old import paths of modules that moved (:mod:`.moved_modules`).

The subsystems that used to live here have their own packages:
``vapt_mm.converters`` (checkpoint converters), ``vapt_mm.protocol`` (the
VTAB-1k / FGVC sweep and results table), ``vapt_mm.benchmark`` (the speed
harness), ``vapt_mm.datasets.demo_data``, ``vapt_mm.engine.dist_cpu`` and
``vapt_mm.models.utils.pretrained_check``. Their old names here still work,
with a ``DeprecationWarning``.
"""
from .moved_modules import moved_attribute_getter
from .parameter_count import count_parameters, format_parameter_report

__all__ = ['count_parameters', 'format_parameter_report']

#: Names this package exported before their modules moved.
_MOVED_NAMES = {
    **{
        name: f'vapt_mm.converters.{name}'
        for name in ('convert_google_vit', 'convert_mae_vit',
                     'convert_mocov3_vit', 'convert_timm_vit',
                     'load_google_vit_npz', 'load_torch_checkpoint',
                     'save_backbone_state_dict')
    },
    'is_cpu_only': 'vapt_mm.engine.dist_cpu.is_cpu_only',
    'setup_cpu_distributed': 'vapt_mm.engine.dist_cpu.setup_cpu_distributed',
    'check_pretrained_checkpoint':
    'vapt_mm.models.utils.check_pretrained_checkpoint',
}

__getattr__ = moved_attribute_getter(__name__, _MOVED_NAMES)
