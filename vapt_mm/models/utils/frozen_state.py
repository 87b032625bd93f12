"""Which parts of a model are frozen, and where their weights come from."""
from typing import Dict, Set

import torch.nn as nn
from mmengine.model import is_model_wrapper

__all__ = [
    'unwrap_model', 'frozen_parameter_names', 'frozen_state_dict_keys',
    'pretrained_checkpoints'
]


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the model inside a wrapper (DDP, MMDistributedDataParallel).

    Args:
        model (nn.Module): A model, wrapped or not.

    Returns:
        nn.Module: ``model.module`` for a wrapper, else ``model``.

    Example:
        >>> import torch.nn as nn
        >>> layer = nn.Linear(2, 2)
        >>> unwrap_model(layer) is layer
        True
    """
    return model.module if is_model_wrapper(model) else model


def frozen_parameter_names(model: nn.Module) -> Set[str]:
    """Names of all parameters with ``requires_grad=False``.

    Shared parameters appear under every name, as in ``state_dict()``.

    Args:
        model (nn.Module): The (unwrapped) model.

    Returns:
        set[str]: The frozen parameter names.

    Example:
        >>> import torch.nn as nn
        >>> layer = nn.Linear(2, 2)
        >>> layer.bias.requires_grad_(False)  # doctest: +ELLIPSIS
        Parameter containing:...
        >>> frozen_parameter_names(layer)
        {'bias'}
    """
    return {
        name
        for name, param in model.named_parameters(remove_duplicate=False)
        if not param.requires_grad
    }


def frozen_state_dict_keys(model: nn.Module,
                           include_buffers: bool = True) -> Set[str]:
    """State-dict keys that belong to the frozen part of ``model``.

    These are the frozen parameters and, with ``include_buffers``, the
    persistent buffers of frozen modules. A buffer belongs to the frozen
    part when the nearest module holding it (or, if that module has no
    parameters, the nearest ancestor that has any) has parameters and none
    of them trains. Buffers of parameter-free parts that hang off a
    trainable model (e.g. a data preprocessor's) are therefore kept.

    Args:
        model (nn.Module): The (unwrapped) model.
        include_buffers (bool): Also return the buffers of frozen modules.
            Defaults to True.

    Returns:
        set[str]: Keys as they appear in ``model.state_dict()``.

    Example:
        >>> import torch.nn as nn
        >>> model = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 2))
        >>> model[0].requires_grad_(False)  # doctest: +ELLIPSIS
        BatchNorm1d(...)
        >>> for key in sorted(frozen_state_dict_keys(model)):
        ...     print(key)
        0.bias
        0.num_batches_tracked
        0.running_mean
        0.running_var
        0.weight
    """
    keys = frozen_parameter_names(model)
    if not include_buffers:
        return keys
    # (number of parameters, number of trainable ones) per module name
    stats: Dict[str, tuple] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        params = list(module.parameters())
        stats[name] = (len(params), sum(p.requires_grad for p in params))
    for name, module in model.named_modules(remove_duplicate=False):
        persistent = [
            buf_name for buf_name, _ in module.named_buffers(recurse=False)
            if buf_name not in module._non_persistent_buffers_set
        ]
        if not persistent:
            continue
        owner = name
        while stats[owner][0] == 0 and owner:
            owner = owner.rsplit('.', 1)[0] if '.' in owner else ''
        num_params, num_trainable = stats[owner]
        if num_params > 0 and num_trainable == 0:
            prefix = f'{name}.' if name else ''
            keys.update(prefix + buf_name for buf_name in persistent)
    return keys


def pretrained_checkpoints(model: nn.Module) -> Dict[str, str]:
    """Checkpoints named by ``init_cfg=dict(type='Pretrained', ...)``.

    Args:
        model (nn.Module): The (unwrapped) model.

    Returns:
        dict[str, str]: Module name (``'backbone'``; ``''`` for the model
        itself, e.g. from ``ImageClassifier(pretrained=...)``) to the
        checkpoint path or URL that ``init_weights()`` loads into it.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> import torch.nn as nn
        >>> model = nn.Module()
        >>> model.backbone = VisionTransformer(
        ...     arch='deit-tiny', img_size=32, patch_size=8,
        ...     init_cfg=dict(type='Pretrained', checkpoint='vit.pth'))
        >>> pretrained_checkpoints(model)
        {'backbone': 'vit.pth'}
    """
    found = {}
    for name, module in model.named_modules():
        init_cfg = getattr(module, 'init_cfg', None)
        if init_cfg is None:
            continue
        cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        for cfg in cfgs:
            if not isinstance(cfg, dict):
                continue
            kind = cfg.get('type')
            kind = getattr(kind, '__name__', kind)
            if kind in ('Pretrained', 'PretrainedInit') and cfg.get(
                    'checkpoint'):
                found[name] = str(cfg['checkpoint'])
    return found
