"""Count a model's parameters per component, total and trainable."""
from collections import OrderedDict
from typing import Dict, List, Set, Tuple

import torch.nn as nn
from mmengine.model import is_model_wrapper

__all__ = ['count_parameters', 'format_parameter_report', 'format_percent']

# Component name for parameters registered directly on the model itself.
ROOT_COMPONENT = '(model)'


def _collapse_trainable(module: nn.Module, prefix: str,
                        seen: Set[int]) -> List[Tuple[str, int]]:
    """Trainable parameters of ``module``, a fully trainable submodule
    collapsed to ``'<prefix>.*'``."""
    params = [p for p in module.parameters() if id(p) not in seen]
    if not params or not any(p.requires_grad for p in params):
        return []
    if all(p.requires_grad for p in params):
        seen.update(id(p) for p in params)
        return [(f'{prefix}.*', sum(p.numel() for p in params))]
    entries = []
    for name, param in module.named_parameters(recurse=False):
        if param.requires_grad and id(param) not in seen:
            seen.add(id(param))
            entries.append((f'{prefix}.{name}', param.numel()))
    for name, child in module.named_children():
        entries.extend(_collapse_trainable(child, f'{prefix}.{name}', seen))
    return entries


def count_parameters(model: nn.Module, backbone: str = 'backbone') -> dict:
    """Count total and trainable parameters per top-level component.

    Every parameter is counted once (shared parameters under their first
    name), so the component counts add up to the totals. A model wrapper
    (DDP) is unwrapped first.

    Args:
        model (nn.Module): The model, e.g. a ``PromptedClassifier``.
        backbone (str): Name of the child whose trainable parameters are
            listed one by one (a fully trainable submodule is collapsed to
            ``'<name>.*'``). Defaults to 'backbone'.

    Returns:
        dict: With keys

        - ``components`` (OrderedDict[str, dict]): per top-level child that
          holds parameters, ``{'total': int, 'trainable': int}``; the
          backbone, ``neck`` and ``head`` first, then the others in module
          order (parameters set on the model itself under ``'(model)'``);
        - ``total``, ``trainable`` (int): the sums;
        - ``trainable_percent`` (float): ``100 * trainable / total``;
        - ``trainable_in_backbone`` (list[tuple[str, int]]): the backbone's
          trainable parameters (name or collapsed prefix, count).

    Example:
        >>> import torch.nn as nn
        >>> model = nn.Module()
        >>> model.backbone = nn.Linear(10, 10)
        >>> model.head = nn.Linear(10, 2)
        >>> model.backbone.requires_grad_(False)  # doctest: +ELLIPSIS
        Linear(...)
        >>> counts = count_parameters(model)
        >>> counts['components']['backbone'], counts['trainable']
        ({'total': 110, 'trainable': 0}, 22)
    """
    if is_model_wrapper(model):
        model = model.module
    components: Dict[str, Dict[str, int]] = OrderedDict()
    for name, _ in model.named_children():
        components[name] = dict(total=0, trainable=0)
    for name, param in model.named_parameters():
        component = name.split('.', 1)[0] if '.' in name else ROOT_COMPONENT
        counts = components.setdefault(component,
                                       dict(total=0, trainable=0))
        counts['total'] += param.numel()
        if param.requires_grad:
            counts['trainable'] += param.numel()
    # backbone, neck, head first (the order data flows), then the rest
    order = [backbone, 'neck', 'head']
    names = sorted((name for name, counts in components.items()
                    if counts['total'] > 0),
                   key=lambda n: order.index(n) if n in order else len(order))
    components = OrderedDict((name, components[name]) for name in names)
    total = sum(c['total'] for c in components.values())
    trainable = sum(c['trainable'] for c in components.values())
    backbone_module = getattr(model, backbone, None)
    trainable_in_backbone = []
    if isinstance(backbone_module, nn.Module):
        trainable_in_backbone = _collapse_trainable(backbone_module, backbone,
                                                    set())
    return dict(
        components=components,
        total=total,
        trainable=trainable,
        trainable_percent=100.0 * trainable / total if total else 0.0,
        trainable_in_backbone=trainable_in_backbone)


def format_percent(percent: float) -> str:
    """Format a share in percent: two decimals, more for tiny shares.

    Args:
        percent (float): The share in percent (0 to 100).

    Returns:
        str: E.g. ``'0.36%'``, ``'0.0041%'``, ``'100.00%'``.

    Example:
        >>> format_percent(0.3612), format_percent(0.004123)
        ('0.36%', '0.0041%')
    """
    if 0 < percent < 0.01:
        return f'{percent:.2g}%'
    return f'{percent:.2f}%'


def format_parameter_report(counts: dict, title: str = 'Parameters') -> str:
    """Render :func:`count_parameters` output as a text table.

    Args:
        counts (dict): The output of :func:`count_parameters`.
        title (str): First line of the report. Defaults to 'Parameters'.

    Returns:
        str: A multi-line table: one row per component with total and
        trainable counts and the trainable share, a ``total`` row, and the
        backbone parameters left trainable.

    Example:
        >>> import torch.nn as nn
        >>> model = nn.Module()
        >>> model.backbone = nn.Linear(10, 10)
        >>> model.head = nn.Linear(10, 2)
        >>> _ = model.backbone.requires_grad_(False)
        >>> print(format_parameter_report(count_parameters(model)))
        Parameters
        component  total  trainable  trainable %
        backbone     110          0        0.00%
        head          22         22      100.00%
        total        132         22       16.67%
        Trainable parameters: 22 of 132 (16.67%)
        Backbone parameters left trainable: none
    """
    rows = [('component', 'total', 'trainable', 'trainable %')]
    for name, c in counts['components'].items():
        share = 100.0 * c['trainable'] / c['total'] if c['total'] else 0.0
        rows.append((name, f"{c['total']:,}", f"{c['trainable']:,}",
                     format_percent(share)))
    rows.append(('total', f"{counts['total']:,}", f"{counts['trainable']:,}",
                 format_percent(counts['trainable_percent'])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [title]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:])
        ]
        lines.append('  '.join(cells).rstrip())
    lines.append(f"Trainable parameters: {counts['trainable']:,} of "
                 f"{counts['total']:,} "
                 f"({format_percent(counts['trainable_percent'])})")
    left = counts['trainable_in_backbone']
    if left:
        lines.append('Backbone parameters left trainable: ' + ', '.join(
            f'{name} ({num:,})' for name, num in left))
    else:
        lines.append('Backbone parameters left trainable: none')
    return '\n'.join(lines)
