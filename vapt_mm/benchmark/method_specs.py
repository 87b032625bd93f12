"""Named benchmark methods (``vapt:10:fast``) and backbone presets.

A method name says which model to build on the benchmark backbone:

=====================  ==================================================
name                   model
=====================  ==================================================
``bare``               the frozen backbone alone, no prompts, no head;
                       gradients flow to the input images
``linear``             ``PromptedClassifier``, ``neck=None`` (linear probe)
``full``               ``neck=None``, ``freeze_backbone=False``
``vpt-shallow:<p>``    ``VPTNeck(num_tokens=p)``
``vpt-deep:<p>``       ``VPTNeck(num_tokens=p, deep=True)``
``vapt:<p>``           ``VAPTNeck(num_tokens=p)``
=====================  ==================================================

A prompted method may end in ``:fast`` or ``:plain``, which passes
``fast_path=True`` / ``False`` to its neck; otherwise the benchmark-wide
fast-path mode decides (see :func:`parse_methods`).
"""
import copy
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence

from ..utils.user_errors import ConfigError

__all__ = [
    'BACKBONE_PRESETS', 'FAST_PATH_MODES', 'MethodSpec', 'parse_method',
    'parse_methods', 'backbone_preset', 'method_model_cfg'
]

# name -> mmpretrain backbone config (random weights: speed and memory do
# not depend on the values).
BACKBONE_PRESETS = {
    'vit-b16':
    dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16),
    'vit-l16':
    dict(type='VisionTransformer', arch='l', img_size=224, patch_size=16),
    'tiny':
    dict(
        type='VisionTransformer',
        arch=dict(
            embed_dims=64, num_layers=2, num_heads=4,
            feedforward_channels=128),
        img_size=32,
        patch_size=8),
}

# --fast-path value -> the neck fast_path values, one row each.
FAST_PATH_MODES = {
    'auto': (None, ),
    'on': (True, ),
    'off': (False, ),
    'both': (True, False),
}

_SUFFIX_TO_FAST_PATH = {'fast': True, 'plain': False}
_FAST_PATH_TO_SUFFIX = {True: 'fast', False: 'plain'}
_PROMPTED = ('vpt-shallow', 'vpt-deep', 'vapt')
_UNPROMPTED = ('bare', 'linear', 'full')
_PATTERN = re.compile(r'^(?P<kind>[a-z-]+)(?::(?P<tokens>\d+))?'
                      r'(?::(?P<suffix>[a-z]+))?$')
_EXPECTED = ('expected one of bare, linear, full, vpt-shallow:<p>, '
             'vpt-deep:<p>, vapt:<p> (p a positive number of prompt '
             'tokens), a prompted one optionally followed by :fast or '
             ':plain, e.g. vapt:10:fast')

@dataclass(frozen=True)
class MethodSpec:
    """One named method to benchmark.

    Args:
        kind (str): 'bare', 'linear', 'full', 'vpt-shallow', 'vpt-deep' or
            'vapt'.
        num_tokens (int, optional): Prompt tokens p of a prompted method.
        fast_path (bool, optional): The neck's ``fast_path`` value when
            ``fast_path_set``.
        fast_path_set (bool): Whether ``fast_path`` is passed to the neck
            at all. Defaults to False.

    Example:
        >>> MethodSpec('vapt', 10, True, True).label
        'vapt:10:fast'
    """

    kind: str
    num_tokens: Optional[int] = None
    fast_path: Optional[bool] = None
    fast_path_set: bool = False

    @property
    def prompted(self) -> bool:
        """Whether the method has a prompt neck."""
        return self.kind in _PROMPTED

    @property
    def label(self) -> str:
        """The row name: ``kind[:p][:fast|:plain]``."""
        if not self.prompted:
            return self.kind
        label = f'{self.kind}:{self.num_tokens}'
        if self.fast_path_set and self.fast_path is not None:
            label += f':{_FAST_PATH_TO_SUFFIX[self.fast_path]}'
        return label


def parse_method(name: str,
                 fast_path_mode: Optional[str] = None) -> List[MethodSpec]:
    """Parse one method name into one or two :class:`MethodSpec`.

    Args:
        name (str): E.g. 'bare', 'vpt-deep:100', 'vapt:10:plain'.
        fast_path_mode (str, optional): For prompted methods without a
            suffix: None leaves ``fast_path`` out of the neck config, 'auto'
            passes None, 'on' True, 'off' False, 'both' gives a True and a
            False row. Defaults to None.

    Returns:
        list[MethodSpec]: One spec, two for 'both'.

    Raises:
        ValueError: If the name or the mode is not understood; the message
            names it and lists the expected forms.

    Example:
        >>> [s.label for s in parse_method('vapt:10', 'both')]
        ['vapt:10:fast', 'vapt:10:plain']
    """
    if fast_path_mode is not None and fast_path_mode not in FAST_PATH_MODES:
        raise ConfigError(
            f'Unknown fast-path mode {fast_path_mode!r}; expected one of '
            f'{", ".join(FAST_PATH_MODES)}.')
    match = _PATTERN.match(str(name).strip())
    kind = match.group('kind') if match else None
    if kind in _UNPROMPTED and match.group('tokens') is None \
            and match.group('suffix') is None:
        return [MethodSpec(kind)]
    if kind not in _PROMPTED or match.group('tokens') is None:
        raise ConfigError(f'Unknown benchmark method {name!r}: {_EXPECTED}.')
    num_tokens = int(match.group('tokens'))
    if num_tokens < 1:
        raise ConfigError(
            f'Benchmark method {name!r}: the number of prompt tokens must '
            'be at least 1.')
    suffix = match.group('suffix')
    if suffix is not None:
        if suffix not in _SUFFIX_TO_FAST_PATH:
            raise ConfigError(
                f'Benchmark method {name!r}: unknown suffix {suffix!r}, '
                'expected :fast or :plain.')
        return [
            MethodSpec(kind, num_tokens, _SUFFIX_TO_FAST_PATH[suffix], True)
        ]
    if fast_path_mode is None:
        return [MethodSpec(kind, num_tokens)]
    return [
        MethodSpec(kind, num_tokens, value, True)
        for value in FAST_PATH_MODES[fast_path_mode]
    ]


def parse_methods(names: Sequence[str],
                  fast_path_mode: Optional[str] = None) -> List[MethodSpec]:
    """Parse method names (see :func:`parse_method`); labels must be unique.

    Args:
        names (Sequence[str]): Method names.
        fast_path_mode (str, optional): See :func:`parse_method`.

    Returns:
        list[MethodSpec]: The specs, in the given order.

    Example:
        >>> [s.label for s in parse_methods(['bare', 'vpt-deep:100'])]
        ['bare', 'vpt-deep:100']
    """
    specs = []
    for name in names:
        specs.extend(parse_method(name, fast_path_mode))
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(
            f'Benchmark methods {duplicates} are given more than once.')
    return specs


def backbone_preset(name: str) -> dict:
    """A copy of the backbone config of preset ``name``.

    Args:
        name (str): One of :data:`BACKBONE_PRESETS`.

    Returns:
        dict: The mmpretrain backbone config.

    Example:
        >>> backbone_preset('vit-b16')['arch']
        'b'
    """
    if name not in BACKBONE_PRESETS:
        raise ConfigError(f'Unknown benchmark backbone {name!r}; expected one '
                          f'of {", ".join(BACKBONE_PRESETS)}.')
    return copy.deepcopy(BACKBONE_PRESETS[name])


def method_model_cfg(spec: MethodSpec, backbone: dict, embed_dims: int,
                     num_classes: int) -> dict:
    """The ``PromptedClassifier`` config of a named method.

    Args:
        spec (MethodSpec): The method; 'bare' gives neither neck nor head.
        backbone (dict): The backbone config.
        embed_dims (int): The backbone's output width (head input).
        num_classes (int): Classes of the linear head.

    Returns:
        dict: A model config for ``mmpretrain.registry.MODELS``.

    Example:
        >>> cfg = method_model_cfg(parse_method('vpt-deep:10')[0],
        ...                        backbone_preset('tiny'), embed_dims=64,
        ...                        num_classes=5)
        >>> cfg['neck']
        {'type': 'VPTNeck', 'num_tokens': 10, 'deep': True}
    """
    cfg = dict(type='PromptedClassifier', backbone=copy.deepcopy(backbone))
    if spec.kind == 'bare':
        return cfg
    cfg['head'] = dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=embed_dims)
    if spec.kind == 'full':
        cfg['freeze_backbone'] = False
    if spec.prompted:
        neck = dict(
            type='VAPTNeck' if spec.kind == 'vapt' else 'VPTNeck',
            num_tokens=spec.num_tokens)
        if spec.kind == 'vpt-deep':
            neck['deep'] = True
        if spec.fast_path_set:
            neck['fast_path'] = spec.fast_path
        cfg['neck'] = neck
    return cfg
