from . import backbones, classifiers, necks  # noqa: F401
from .classifiers import MultiTaskPromptedClassifier, PromptedClassifier
from .necks import BasePromptNeck, VAPTNeck, VPTNeck

__all__ = [
    'PromptedClassifier', 'MultiTaskPromptedClassifier', 'BasePromptNeck',
    'VPTNeck', 'VAPTNeck'
]
