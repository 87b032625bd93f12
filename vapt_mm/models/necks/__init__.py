from ..utils.prompted_forward import remove_prompts, run_backbone
from .base_prompt_neck import BasePromptNeck
from .prompt_neck_builder import build_prompt_neck
from .static_prompts import StaticPrompts, vpt_uniform_bound
from .vapt_neck import AdaptivePromptGenerator, FeatureProjector, VAPTNeck
from .vpt_neck import VPTNeck

# run_backbone and remove_prompts live in vapt_mm.models.utils; they are
# re-exported here because vapt_mm.models.necks exported them first.
__all__ = [
    'BasePromptNeck', 'build_prompt_neck', 'vpt_uniform_bound',
    'run_backbone', 'remove_prompts', 'StaticPrompts', 'VPTNeck', 'VAPTNeck',
    'AdaptivePromptGenerator', 'FeatureProjector'
]
