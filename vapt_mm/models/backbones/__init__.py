from .base_adapter import (BackboneAdapter, build_backbone_adapter,
                           register_backbone_adapter,
                           supported_backbone_names)
from .mmpretrain_vit_adapters import (DeiT3Adapter,
                                      DistilledVisionTransformerAdapter,
                                      MAEViTAdapter, VisionTransformerAdapter)
from .timm_vit_adapter import TIMMVisionTransformerAdapter

__all__ = [
    'BackboneAdapter', 'build_backbone_adapter', 'register_backbone_adapter',
    'supported_backbone_names', 'VisionTransformerAdapter',
    'DistilledVisionTransformerAdapter', 'DeiT3Adapter', 'MAEViTAdapter',
    'TIMMVisionTransformerAdapter'
]
