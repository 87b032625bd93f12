"""Turn an optimizer-wrapper config into its mixed precision variant."""
import copy
import logging
from typing import Optional

from mmengine.device import get_device
from mmengine.logging import print_log

from ...utils.user_errors import ConfigError

__all__ = ['amp_optim_wrapper_cfg']

_SWITCHABLE = ('OptimWrapper', 'AmpOptimWrapper', 'CPUAmpOptimWrapper')
_DTYPES = ('float16', 'bfloat16')
_GPU_DEVICES = ('cuda', 'npu', 'mlu', 'musa')
# Arguments of mmengine's AmpOptimWrapper that CPUAmpOptimWrapper lacks.
_GPU_ONLY_ARGS = ('loss_scale', 'use_fsdp')


def amp_optim_wrapper_cfg(optim_wrapper_cfg: dict,
                          dtype: Optional[str] = None,
                          device: Optional[str] = None) -> dict:
    """Return ``optim_wrapper_cfg`` switched to automatic mixed precision.

    On a GPU (``cuda``; also ``npu``, ``mlu``, ``musa``) this is the
    standard mmengine way: ``type='AmpOptimWrapper'`` with ``dtype``
    (default ``'float16'``, with ``loss_scale='dynamic'`` unless the config
    sets one; ``'bfloat16'`` selectable). On CPU it is
    ``type='CPUAmpOptimWrapper'`` with bfloat16 autocast and no loss
    scaling (a ``loss_scale`` or ``use_fsdp`` in the config is dropped).
    The input config is not modified.

    Args:
        optim_wrapper_cfg (dict): The config's ``optim_wrapper``; its
            ``type`` must be ``OptimWrapper`` (or absent),
            ``AmpOptimWrapper`` or ``CPUAmpOptimWrapper``.
        dtype (str, optional): ``'float16'`` or ``'bfloat16'``; None takes
            the device's default (GPU float16, CPU bfloat16).
        device (str, optional): ``'cuda'``, ``'cpu'``, ...; None takes
            ``mmengine.device.get_device()``.

    Returns:
        dict: The new optimizer-wrapper config.

    Raises:
        ValueError: For another wrapper type, an unknown dtype, float16 on
            CPU, or a device without AMP support.

    Example:
        >>> cfg = dict(optimizer=dict(type='SGD', lr=0.1))
        >>> amp_optim_wrapper_cfg(cfg, device='cuda')['type']
        'AmpOptimWrapper'
        >>> cpu_cfg = amp_optim_wrapper_cfg(cfg, device='cpu')
        >>> cpu_cfg['type'], cpu_cfg['dtype']
        ('CPUAmpOptimWrapper', 'bfloat16')
    """
    if not isinstance(optim_wrapper_cfg, dict):
        raise TypeError('amp_optim_wrapper_cfg: optim_wrapper must be a '
                        f'dict, got {type(optim_wrapper_cfg).__name__}.')
    wrapper_type = optim_wrapper_cfg.get('type', 'OptimWrapper')
    if wrapper_type not in _SWITCHABLE:
        raise ConfigError(
            f'AMP: optim_wrapper.type={wrapper_type!r} cannot be switched to '
            f'mixed precision; expected one of {list(_SWITCHABLE)}.')
    if dtype is not None and dtype not in _DTYPES:
        raise ConfigError(f'AMP: dtype must be one of {list(_DTYPES)} or '
                          f'None, got {dtype!r}.')
    device = get_device() if device is None else device
    cfg = copy.deepcopy(optim_wrapper_cfg)

    if device == 'cpu':
        if dtype == 'float16':
            raise ConfigError(
                'AMP on CPU supports bfloat16 only, but float16 was asked '
                'for (--amp-dtype or optim_wrapper.dtype). Use bfloat16 on '
                'CPU, or train on a GPU for float16.')
        dropped = {k: cfg.pop(k) for k in _GPU_ONLY_ARGS if k in cfg}
        if dropped:
            print_log(
                f'AMP on CPU: ignoring GPU-only optim_wrapper options '
                f'{dropped} (bfloat16 needs no loss scaling).',
                logger='current',
                level=logging.WARNING)
        cfg['type'] = 'CPUAmpOptimWrapper'
        cfg['dtype'] = 'bfloat16'
    elif device in _GPU_DEVICES:
        dtype = 'float16' if dtype is None else dtype
        cfg['type'] = 'AmpOptimWrapper'
        cfg['dtype'] = dtype
        if dtype == 'float16':
            cfg.setdefault('loss_scale', 'dynamic')
    else:
        raise ConfigError(
            f'AMP: no mixed precision optimizer wrapper for device '
            f'{device!r}; supported: cpu, {", ".join(_GPU_DEVICES)}.')
    return cfg
