"""Helpers of the model code."""
from .pretrained_check import check_pretrained_checkpoint

__all__ = ['check_pretrained_checkpoint']
