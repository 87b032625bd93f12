"""A content fingerprint of backbone weights.

A prompt-tuned checkpoint is only meaningful on the frozen backbone it was
trained on. The fingerprint names those weights by their content (key,
dtype, shape and bytes of every tensor), not by a file path: the same
tensors give the same fingerprint whether they sit in a module, a ``.pth``
state dict or a ``.safetensors`` file, and whatever the order of the keys.
"""
import hashlib
from typing import Iterable, Mapping, Optional, Union

import torch
import torch.nn as nn


__all__ = ['backbone_fingerprint', 'tensor_fingerprint', 'FINGERPRINT_SCHEME']

#: Leading part of every fingerprint; a new hashing scheme gets a new name.
FINGERPRINT_SCHEME = 'sha256-v1'


def tensor_fingerprint(tensor: torch.Tensor) -> str:
    """SHA-1 of a tensor's dtype, shape and raw bytes.

    Hashes in place on CPU (a tensor on another device is copied to CPU on
    its own first); no copy of the model is kept.

    Args:
        tensor (Tensor): Any dense tensor.

    Returns:
        str: The hex digest; equal digests mean bit-identical tensors.

    Example:
        >>> import torch
        >>> t = torch.zeros(3)
        >>> tensor_fingerprint(t) == tensor_fingerprint(torch.zeros(3))
        True
        >>> tensor_fingerprint(t) == tensor_fingerprint(torch.zeros(3) + 1)
        False
    """
    data = tensor.detach()
    if data.device.type != 'cpu':
        data = data.cpu()
    data = data.contiguous()
    digest = hashlib.sha1(f'{data.dtype}|{tuple(data.shape)}|'.encode())
    if data.numel():
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def backbone_fingerprint(weights: Union[nn.Module, Mapping[str,
                                                           torch.Tensor]],
                         keys: Optional[Iterable[str]] = None,
                         prefix: str = '') -> str:
    """Fingerprint of backbone weights, from a module or a state dict.

    The SHA-256 over the sorted keys and, per key, the SHA-1 of the
    tensor's dtype, shape and raw bytes
    (:func:`tensor_fingerprint`).
    Devices and key order do not matter; a different value, dtype, shape or
    key set gives a different fingerprint.

    Args:
        weights (nn.Module | Mapping[str, Tensor]): The backbone module
            (its ``state_dict()`` is used) or a state dict.
        keys (Iterable[str], optional): Only these keys (after ``prefix`` is
            removed), e.g. the frozen part of a backbone. Each must exist.
            Defaults to all keys.
        prefix (str): Use only the keys that start with it, without it,
            e.g. ``'backbone.'`` for a whole classifier's state dict.
            Defaults to ''.

    Returns:
        str: ``'sha256-v1:<64 hex digits>'``.

    Raises:
        KeyError: A key in ``keys`` is not among the weights.
        TypeError: A selected value is not a tensor.

    Example:
        >>> import torch.nn as nn
        >>> layer = nn.Linear(2, 2)
        >>> fp = backbone_fingerprint(layer)
        >>> fp.startswith('sha256-v1:')
        True
        >>> state = {'model.' + k: v for k, v in layer.state_dict().items()}
        >>> backbone_fingerprint(state, prefix='model.') == fp
        True
    """
    if isinstance(weights, nn.Module):
        weights = weights.state_dict()
    selected = {
        key[len(prefix):]: value
        for key, value in weights.items() if key.startswith(prefix)
    }
    if keys is not None:
        wanted = sorted(set(keys))
        absent = [key for key in wanted if key not in selected]
        if absent:
            raise KeyError(f'backbone_fingerprint: {len(absent)} key(s) are '
                           f'not among the weights, e.g. {absent[:5]}.')
        selected = {key: selected[key] for key in wanted}
    digest = hashlib.sha256()
    for key in sorted(selected):
        value = selected[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f'backbone_fingerprint: {prefix}{key} holds a '
                            f'{type(value).__name__}, not a tensor.')
        digest.update(f'{key}\t{tensor_fingerprint(value)}\n'.encode())
    return f'{FINGERPRINT_SCHEME}:{digest.hexdigest()}'
