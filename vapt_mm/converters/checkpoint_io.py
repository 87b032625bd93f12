"""Read foreign checkpoints and write converted backbone state dicts.

Converted weights are written as ``{'state_dict': {name: tensor}}``: plain
tensors only, so they load with ``torch.load(weights_only=True)`` and with
mmengine's ``Pretrained`` initialiser.
"""
import os.path as osp
import pickle
from typing import Any, Dict, Iterable, Mapping

import torch

from vapt_mm.utils.atomic_io import atomic_torch_save
from vapt_mm.utils.user_errors import (CheckpointFormatError, MissingFileError,
                                       MissingPackageError)

__all__ = [
    'load_torch_checkpoint', 'select_wrapped_state_dict',
    'require_source_keys', 'save_backbone_state_dict'
]


def load_torch_checkpoint(path: str, trust_pickle: bool = False) -> Any:
    """Load a PyTorch (``.pth``/``.bin``/``.pt``) or ``.safetensors`` file.

    PyTorch files are loaded on the CPU with ``weights_only=True`` unless
    ``trust_pickle`` is set, so a foreign file cannot run code while it is
    read.

    Args:
        path (str): The file to read. ``~`` is expanded.
        trust_pickle (bool): Load with ``weights_only=False``. Only for files
            whose source you trust (e.g. a checkpoint that also pickled its
            training arguments). Defaults to False.

    Returns:
        Any: What the file holds (usually a dict).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: The file is not a readable checkpoint.

    Example:
        >>> import torch
        >>> torch.save({'w': torch.zeros(2)}, '/tmp/w.pth')
        >>> load_torch_checkpoint('/tmp/w.pth')['w'].shape
        torch.Size([2])
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise MissingFileError(f'Checkpoint file {path!r} does not exist.')
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise MissingPackageError(
                f'Reading {path!r} needs the `safetensors` package '
                '(pip install safetensors).') from e
        try:
            return load_file(path, device='cpu')
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointFormatError(
                f'{path!r} is not a readable .safetensors file: {e}') from e
    try:
        return torch.load(
            path, map_location='cpu', weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        if trust_pickle:
            raise CheckpointFormatError(
                f'{path!r} is not a readable PyTorch checkpoint: {e}') from e
        raise CheckpointFormatError(
            f'{path!r} holds Python objects besides tensors, so it cannot be '
            'read with torch.load(weights_only=True). If you trust the file, '
            'pass trust_pickle=True (--trust-pickle on the command line). '
            f'torch said: {str(e).splitlines()[0]}') from e
    except Exception as e:  # torch raises RuntimeError, KeyError, EOFError...
        raise CheckpointFormatError(
            f'{path!r} is not a PyTorch checkpoint ({type(e).__name__}: '
            f'{e}).') from e


def select_wrapped_state_dict(checkpoint: Any, wrapper_key: str,
                              source: str) -> Dict[str, Any]:
    """Return ``checkpoint[wrapper_key]``, checking that it is a dict.

    Args:
        checkpoint (Any): A loaded checkpoint.
        wrapper_key (str): The key that holds the weights (``'model'``,
            ``'state_dict'``).
        source (str): The checkpoint's name for error messages.

    Returns:
        dict: The wrapped state dict.

    Raises:
        ValueError: ``checkpoint`` is not a dict holding a dict under
            ``wrapper_key``.

    Example:
        >>> ckpt = {'model': {'cls_token': 1}, 'epoch': 3}
        >>> select_wrapped_state_dict(ckpt, 'model', 'mae.pth')
        {'cls_token': 1}
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointFormatError(f'{source} must hold a dict, got '
                                    f'{type(checkpoint).__name__}.')
    if wrapper_key not in checkpoint:
        raise CheckpointFormatError(
            f'{source} has no {wrapper_key!r} entry: its top-level keys are '
            f'{_preview(checkpoint.keys())}.')
    state_dict = checkpoint[wrapper_key]
    if not isinstance(state_dict, Mapping):
        raise CheckpointFormatError(
            f'{source}[{wrapper_key!r}] must be a dict of '
            f'tensors, got {type(state_dict).__name__}.')
    return dict(state_dict)


def require_source_keys(weights: Iterable[str], required: Iterable[str],
                        source: str, format_name: str) -> None:
    """Raise a ``ValueError`` naming every required key that is absent.

    Args:
        weights (Iterable[str]): The keys the source checkpoint has.
        required (Iterable[str]): The keys the format must have.
        source (str): The checkpoint's name for the message.
        format_name (str): The expected format, e.g. ``"Google ViT .npz"``.

    Raises:
        ValueError: Some required keys are missing.

    Example:
        >>> require_source_keys(['cls'], ['cls'], 'a.npz', 'Google ViT .npz')
    """
    present = set(weights)
    missing = [k for k in required if k not in present]
    if missing:
        raise CheckpointFormatError(
            f'{source} is not a {format_name} checkpoint: missing keys '
            f'{missing}. Keys found: {_preview(sorted(present))}.')


def save_backbone_state_dict(state_dict: Mapping[str, torch.Tensor],
                             dst: str,
                             prefix: str = '') -> int:
    """Write ``{'state_dict': {prefix + name: tensor}}`` to ``dst``.

    Tensors are made contiguous and stored without sharing storage, so the
    file holds nothing but the weights. The file is written atomically: a
    failure while writing leaves the old ``dst`` (or none), never a
    truncated one.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Backbone weights named as
            the mmpretrain backbone names them.
        dst (str): Output path; missing parent folders are created.
        prefix (str): Prepended to every key, e.g. ``'backbone.'`` for a
            whole-classifier checkpoint. Defaults to ``''``.

    Returns:
        int: The number of tensors written.

    Example:
        >>> import torch
        >>> save_backbone_state_dict({'cls_token': torch.zeros(1, 1, 8)},
        ...                          '/tmp/vit.pth')
        1
    """
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f'State dict entry {name!r} must be a tensor, got '
                            f'{type(value).__name__}.')
    out = {
        prefix + name: value.detach().cpu().contiguous().clone()
        for name, value in state_dict.items()
    }
    atomic_torch_save({'state_dict': out}, dst)
    return len(out)


def _preview(keys: Iterable[str], limit: int = 12) -> str:
    keys = list(keys)
    shown = ', '.join(repr(k) for k in keys[:limit])
    more = f', ... ({len(keys)} in all)' if len(keys) > limit else ''
    return f'[{shown}{more}]'
