from .base_adapter import (BackboneAdapter, build_backbone_adapter,
                           register_backbone_adapter,
                           supported_backbone_names)
from .mmpretrain_vit_adapters import (DeiT3Adapter,
                                      DistilledVisionTransformerAdapter,
                                      VisionTransformerAdapter)
from .timm_vit_adapter import TIMMVisionTransformerAdapter  # noqa: F401

__all__ = [
    'BackboneAdapter', 'build_backbone_adapter', 'register_backbone_adapter',
    'supported_backbone_names', 'VisionTransformerAdapter',
    'DistilledVisionTransformerAdapter', 'DeiT3Adapter'
]
