from . import backbones, classifiers, necks  # noqa: F401
from .classifiers import PromptedClassifier
from .necks import BasePromptNeck, VAPTNeck, VPTNeck

__all__ = ['PromptedClassifier', 'BasePromptNeck', 'VPTNeck', 'VAPTNeck']
