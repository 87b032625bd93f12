from .backbone_fingerprint import backbone_fingerprint
from .exact_loading import checkpoint_source
from .prompted_classifier import PromptedClassifier

__all__ = ['PromptedClassifier', 'backbone_fingerprint', 'checkpoint_source']
