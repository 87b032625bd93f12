"""Small helpers: parameter counts, user errors, atomic writes, and the old
import paths of modules that moved out of here (:mod:`vapt_mm.compat`)."""
from ..compat.moved_modules import moved_attribute_getter
from .parameter_count import count_parameters, format_parameter_report

__all__ = ['count_parameters', 'format_parameter_report']

_CONVERTED = ('convert_google_vit', 'convert_mae_vit', 'convert_mocov3_vit',
              'convert_timm_vit', 'load_google_vit_npz',
              'load_torch_checkpoint', 'save_backbone_state_dict')
#: Names this package exported before their modules moved.
_MOVED_NAMES = {
    **{name: f'vapt_mm.converters.{name}' for name in _CONVERTED},
    'is_cpu_only': 'vapt_mm.engine.dist_cpu.is_cpu_only',
    'setup_cpu_distributed': 'vapt_mm.engine.dist_cpu.setup_cpu_distributed',
    'check_pretrained_checkpoint':
    'vapt_mm.models.utils.check_pretrained_checkpoint',
}

__getattr__ = moved_attribute_getter(__name__, _MOVED_NAMES)
