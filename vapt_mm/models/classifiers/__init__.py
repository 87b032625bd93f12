from .prompted_classifier import PromptedClassifier

__all__ = ['PromptedClassifier']
