"""Convert foreign ViT checkpoints into mmpretrain ``VisionTransformer``
weights (Google ``.npz``, timm, MAE, MoCo v3). See
``docs/pretrained_weights.md``."""
from .checkpoint_io import (load_torch_checkpoint, require_source_keys,
                            save_backbone_state_dict,
                            select_wrapped_state_dict)
from .converter_cli import run_converter_cli
from .google_vit_npz import convert_google_vit, load_google_vit_npz
from .mae_vit import convert_mae_vit
from .mmpretrain_vit_layout import (check_vit_geometry, describe_vit_geometry,
                                    mmpretrain_vit_keys)
from .mocov3_vit import convert_mocov3_vit
from .timm_vit import convert_timm_vit
from .timm_vit_keys import convert_timm_vit_names

__all__ = [
    'load_torch_checkpoint', 'require_source_keys', 'save_backbone_state_dict',
    'select_wrapped_state_dict', 'run_converter_cli', 'convert_google_vit',
    'load_google_vit_npz', 'convert_mae_vit', 'check_vit_geometry',
    'describe_vit_geometry', 'mmpretrain_vit_keys', 'convert_mocov3_vit',
    'convert_timm_vit', 'convert_timm_vit_names'
]
