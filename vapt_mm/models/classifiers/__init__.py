from .multi_task_classifier import MultiTaskPromptedClassifier
from .prompted_classifier import PromptedClassifier

__all__ = ['PromptedClassifier', 'MultiTaskPromptedClassifier']
