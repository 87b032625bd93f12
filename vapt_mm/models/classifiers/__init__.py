from .backbone_fingerprint import backbone_fingerprint
from .exact_loading import checkpoint_source
from .multi_task_classifier import MultiTaskPromptedClassifier
from .prompted_classifier import PromptedClassifier

__all__ = [
    'PromptedClassifier', 'MultiTaskPromptedClassifier',
    'backbone_fingerprint', 'checkpoint_source'
]
