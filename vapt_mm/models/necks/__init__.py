from .adaptive_prompt_modules import AdaptivePromptGenerator, FeatureProjector
from .base_prompt_neck import BasePromptNeck, vpt_uniform_bound
from .prompted_forward import remove_prompts, run_backbone
from .static_prompts import StaticPrompts
from .vapt_neck import VAPTNeck
from .vpt_neck import VPTNeck

__all__ = [
    'BasePromptNeck', 'vpt_uniform_bound', 'run_backbone', 'remove_prompts',
    'StaticPrompts', 'VPTNeck', 'VAPTNeck', 'AdaptivePromptGenerator',
    'FeatureProjector'
]
