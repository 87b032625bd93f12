"""Check a pretrained checkpoint against a backbone before mmengine loads it.

mmengine's ``Pretrained`` initialiser loads with ``strict=False``: a wrong
file, a wrong ``prefix`` or a wrong architecture only logs warnings, and a
frozen backbone then trains prompts on random features. This check turns
those cases into errors that say what is wrong.
"""
import os.path as osp
import pickle
from typing import Any, Dict, List, Mapping, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from ...utils.user_errors import CheckpointFormatError, MissingFileError

__all__ = ['check_pretrained_checkpoint']

DOCS = 'docs/pretrained_weights.md'
# Keys whose token count may differ: mmpretrain resizes them at load time.
_RESIZABLE = ('pos_embed', )
_URL_SCHEMES = ('http://', 'https://', 'torchvision://', 'open-mmlab://',
                'openmmlab://', 'mmcls://', 'pavi://', 's3://')


def check_pretrained_checkpoint(backbone: nn.Module,
                                checkpoint: str,
                                prefix: Optional[str] = None) -> None:
    """Raise if ``checkpoint`` cannot fully initialise ``backbone``.

    The file is read the way ``init_cfg=dict(type='Pretrained',
    checkpoint=checkpoint, prefix=prefix)`` reads it: the weights are the
    ``'state_dict'`` entry if there is one, else the file itself; without a
    prefix a leading ``module.`` is removed, with a prefix only keys that
    start with it are used, prefix removed. Keys the backbone does not have
    (e.g. a classifier head) are ignored, as mmengine ignores them. A
    ``pos_embed`` whose token count differs is accepted (mmpretrain resizes
    it), as long as its width matches. Remote checkpoints (URLs) are not
    checked.

    Args:
        backbone (nn.Module): The built backbone, before weights are loaded.
        checkpoint (str): Path to the checkpoint.
        prefix (str, optional): The ``prefix`` of the ``Pretrained`` init
            config, e.g. ``'backbone.'``. Defaults to None.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be read with ``weights_only=True``, has
            no weights mmengine would find, or lacks backbone keys or has
            other shapes (every missing key and every mismatch is listed).

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> vit = VisionTransformer(arch='b', img_size=224, patch_size=16)
        >>> check_pretrained_checkpoint(vit, 'checkpoints/vit-b16_in21k.pth')
    """
    if checkpoint.startswith(_URL_SCHEMES):
        print_log(
            f'Pretrained checkpoint {checkpoint} is remote; it is loaded by '
            'mmengine without a local check.',
            logger='current')
        return
    path = osp.expanduser(checkpoint)
    if not osp.isfile(path):
        raise MissingFileError(
            f'Pretrained checkpoint {checkpoint!r} does not exist. '
            f'{DOCS} says where to download the weights and how to convert '
            'them to this path.')
    state_dict = _select_weights(_load(path, checkpoint), checkpoint, prefix)
    expected = backbone.state_dict()

    missing = [k for k in expected if k not in state_dict]
    mismatched = []
    for key, target in expected.items():
        if key not in state_dict:
            continue
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            mismatched.append(f'{key}: checkpoint holds a '
                              f'{type(value).__name__}, expected a tensor of '
                              f'shape {tuple(target.shape)}')
        elif not _shapes_fit(key, value.shape, target.shape):
            mismatched.append(f'{key}: checkpoint {tuple(value.shape)}, '
                              f'expected {tuple(target.shape)}')
    if not missing and not mismatched:
        return

    where = f'{checkpoint!r}' + (f' (prefix {prefix!r})' if prefix else '')
    lines = [
        f'Pretrained checkpoint {where} does not fit the backbone '
        f'{type(backbone).__name__}:'
    ]
    if missing:
        lines.append(f'  {len(missing)} backbone key(s) missing from the '
                     'checkpoint:')
        lines += [f'    {k}' for k in missing]
    if mismatched:
        lines.append(f'  {len(mismatched)} shape mismatch(es):')
        lines += [f'    {m}' for m in mismatched]
    hint = _prefix_hint(state_dict, expected, prefix, missing)
    if hint:
        lines.append(hint)
    lines.append(f'See {DOCS} for the checkpoints each backbone expects and '
                 'how to convert them.')
    raise CheckpointFormatError('\n'.join(lines))


def _load(path: str, name: str) -> Any:
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointFormatError(
            f'Pretrained checkpoint {name!r} holds Python objects besides '
            'tensors and cannot be loaded with weights_only=True. Convert it '
            f'to a plain tensor state dict (see {DOCS}).') from e
    except Exception as e:  # torch raises RuntimeError, KeyError, ...
        raise CheckpointFormatError(
            f'Pretrained checkpoint {name!r} is not a PyTorch checkpoint '
            f'({type(e).__name__}: {e}); foreign formats (.npz, '
            f'.safetensors) must be converted first (see {DOCS}).') from e


def _select_weights(loaded: Any, name: str,
                    prefix: Optional[str]) -> Dict[str, Any]:
    """Pick the weights as mmengine's ``Pretrained`` init would."""
    if not isinstance(loaded, Mapping):
        raise CheckpointFormatError(f'Pretrained checkpoint {name!r} must hold a dict of '
                         f'tensors, got {type(loaded).__name__}.')
    if 'state_dict' in loaded:
        state_dict = loaded['state_dict']
        if not isinstance(state_dict, Mapping):
            raise CheckpointFormatError(
                f"Pretrained checkpoint {name!r}: 'state_dict' must be a dict "
                f'of tensors, got {type(state_dict).__name__}.')
    else:
        state_dict = loaded
        if isinstance(loaded.get('model'), Mapping) and not any(
                isinstance(v, torch.Tensor) for v in loaded.values()):
            raise CheckpointFormatError(
                f"Pretrained checkpoint {name!r} keeps its weights under "
                "'model', which mmengine's Pretrained init does not unwrap "
                "(it only unwraps 'state_dict'), so nothing would be loaded. "
                'It looks like an unconverted MAE/DeiT/timm checkpoint: '
                f'convert it with tools/model_converters/ (see {DOCS}).')
    if prefix is None:
        return {
            k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state_dict.items()
        }
    if not prefix.endswith('.'):
        prefix += '.'
    selected = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not selected:
        sample = sorted(state_dict)[:5]
        raise CheckpointFormatError(
            f'Pretrained checkpoint {name!r} has no key starting with prefix '
            f'{prefix!r} (keys look like {sample}); set init_cfg prefix to '
            'match the file, or None if its keys have no prefix '
            f'(see {DOCS}).')
    return selected


def _shapes_fit(key: str, found: torch.Size, expected: torch.Size) -> bool:
    if found == expected:
        return True
    if key.split('.')[-1] in _RESIZABLE:
        # same rank and width; the token count is resized at load time
        return len(found) == len(expected) and found[-1] == expected[-1]
    return False


def _prefix_hint(state_dict: Mapping[str, Any], expected: Mapping[str, Any],
                 prefix: Optional[str], missing: List[str]) -> str:
    """Suggest a prefix when the keys would match under one."""
    if len(missing) != len(expected):
        return ''
    heads = {k.split('.', 1)[0] for k in state_dict if '.' in k}
    for head in sorted(heads):
        stripped = {
            k.split('.', 1)[1]
            for k in state_dict if k.startswith(head + '.')
        }
        if set(expected) <= stripped:
            return (f"  Hint: the checkpoint's keys start with '{head}.'; "
                    f"use init_cfg prefix='{head}.'.")
    return ''
