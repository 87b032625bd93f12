"""Mixed precision training on CPU: bfloat16 autocast, no loss scaling."""
from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS

from ...utils.user_errors import ConfigError

__all__ = ['CPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the forward pass under CPU bf16 autocast.

    mmengine's ``AmpOptimWrapper`` asserts a GPU. This wrapper is its CPU
    counterpart: ``optim_context`` (which mmengine's ``train_step`` wraps
    around the data preprocessor and the forward pass) enters
    ``torch.autocast('cpu', dtype=torch.bfloat16)``. Parameters, gradients
    and optimizer state stay float32. bfloat16 has float32's exponent range,
    so no loss scaling is needed: backward, gradient clipping and gradient
    accumulation (``accumulative_counts``, including DDP ``no_sync``) are
    exactly the parent's.

    Only bfloat16 is supported; ``dtype='float16'`` is refused. CPUs without
    native bf16 units run bf16 matrix products slower than float32, so this
    mainly serves to test the mixed precision path on CPU machines.

    Args:
        dtype (str | torch.dtype): The autocast dtype; only ``'bfloat16'``.
            Defaults to 'bfloat16'.
        **kwargs: ``optimizer``, ``accumulative_counts``, ``clip_grad`` as
            for ``OptimWrapper``.

    Example:
        >>> optim_wrapper = dict(
        ...     type='CPUAmpOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ConfigError(
                f'CPUAmpOptimWrapper: dtype must be bfloat16, got {dtype!r}. '
                'CPU mixed precision here is bfloat16 autocast without loss '
                'scaling; for float16 train on a GPU with AmpOptimWrapper.')
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context of the parent plus CPU autocast.

        Args:
            model (nn.Module): The training model.
        """
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
