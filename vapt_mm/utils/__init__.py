"""Helpers: weight conversion, pretrained-file checks, parameter counts and
CPU distributed setup. The sweep (``vapt_mm.utils.sweep``), benchmark
(``vapt_mm.utils.benchmark``) and demo helpers are imported by their tools
only, so ``import vapt_mm`` stays light."""
from .checkpoint_conversion import (convert_google_vit, convert_mae_vit,
                                    convert_mocov3_vit, convert_timm_vit,
                                    load_google_vit_npz,
                                    load_torch_checkpoint,
                                    save_backbone_state_dict)
from .dist_cpu import is_cpu_only, setup_cpu_distributed
from .parameter_count import count_parameters, format_parameter_report
from .pretrained_check import check_pretrained_checkpoint

__all__ = [
    'convert_google_vit', 'convert_mae_vit', 'convert_mocov3_vit',
    'convert_timm_vit', 'load_google_vit_npz', 'load_torch_checkpoint',
    'save_backbone_state_dict', 'is_cpu_only', 'setup_cpu_distributed',
    'count_parameters', 'format_parameter_report',
    'check_pretrained_checkpoint'
]
