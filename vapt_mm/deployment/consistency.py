"""Run an exported file and compare it with the PyTorch model."""
import io
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from ..utils.user_errors import UserError, user_message
from .inference_graph import INPUT_NAME

__all__ = [
    'ExportMismatchError', 'load_exported', 'max_abs_differences',
    'check_exported'
]


class ExportMismatchError(UserError, RuntimeError):
    """An exported model whose outputs differ from PyTorch's beyond the
    tolerance."""


def _onnx_runner(
        source: Union[str, bytes]) -> Callable[[torch.Tensor], np.ndarray]:
    try:
        import onnxruntime
    except ImportError as error:
        raise UserError(
            user_message(
                'onnxruntime is not installed; it runs the ONNX file to '
                'check it against PyTorch',
                fix='pip install onnxruntime (or pip install -e '
                '".[optional]")')) from error
    session = onnxruntime.InferenceSession(
        source, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    if name != INPUT_NAME:
        raise UserError(
            user_message(
                f'the ONNX model takes input {name!r}, not {INPUT_NAME!r}',
                fix='check an ONNX file written by vapt_mm\'s export'))
    return lambda images: session.run(None, {name: images.numpy()})[0]


def _torch_runner(module: Callable) -> Callable[[torch.Tensor], np.ndarray]:

    def run(images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return module(images).numpy()

    return run


def load_exported(source: Union[str, bytes],
                  fmt: str) -> Callable[[torch.Tensor], np.ndarray]:
    """Load an exported model as a function ``images -> logits``.

    Args:
        source (str | bytes): The file, or its content.
        fmt (str): ``'onnx'`` (run by onnxruntime on the CPU),
            ``'torch_export'`` (``torch.export.load(path).module()``) or
            ``'torchscript'`` (``torch.jit.load``).

    Returns:
        callable: Takes a CPU tensor of images, returns a numpy array.

    Example:
        >>> run = load_exported('model.onnx', 'onnx')  # doctest: +SKIP
        >>> run(torch.randn(3, 3, 224, 224)).shape  # doctest: +SKIP
        (3, 10)
    """
    if fmt == 'onnx':
        return _onnx_runner(source)
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    if fmt == 'torch_export':
        return _torch_runner(torch.export.load(file).module())
    if fmt == 'torchscript':
        return _torch_runner(torch.jit.load(file, map_location='cpu'))
    raise ValueError(f'unknown export format {fmt!r}')


def max_abs_differences(
        exported: Callable[[torch.Tensor], np.ndarray],
        reference: nn.Module,
        inputs: Sequence[torch.Tensor]) -> Dict[int, float]:
    """Largest absolute difference of the outputs, per input batch.

    Args:
        exported (callable): ``images -> logits`` of the exported file.
        reference (nn.Module): The PyTorch graph, in eval mode.
        inputs (Sequence[Tensor]): Image batches of different sizes.

    Returns:
        dict[int, float]: Batch size to ``max |exported - reference|``.

    Example:
        >>> max_abs_differences(run, graph, [x1, x3])  # doctest: +SKIP
        {1: 2.9e-08, 3: 4.4e-08}
    """
    differences = {}
    for images in inputs:
        with torch.no_grad():
            expected = reference(images).numpy()
        got = np.asarray(exported(images))
        if got.shape != expected.shape:
            raise ExportMismatchError(
                user_message(
                    f'the exported model gives shape {got.shape} at batch '
                    f'{images.shape[0]}, PyTorch {expected.shape}',
                    fix='report this as a bug with the command line'))
        differences[images.shape[0]] = float(np.abs(got - expected).max())
    return differences


def check_exported(source: Union[str, bytes],
                   fmt: str,
                   reference: nn.Module,
                   inputs: Sequence[torch.Tensor],
                   tolerance: float,
                   target: Optional[str] = None) -> Dict[int, float]:
    """Compare an exported file with PyTorch; refuse it above ``tolerance``.

    Args:
        source (str | bytes): The exported file, or its content.
        fmt (str): Its format (see :func:`load_exported`).
        reference (nn.Module): The PyTorch graph, in eval mode.
        inputs (Sequence[Tensor]): Image batches to compare on.
        tolerance (float): Largest allowed absolute difference.
        target (str, optional): The file ``source`` is about to be written
            to: messages name it and say it was not written. Defaults to
            None (``source`` is an existing file).

    Returns:
        dict[int, float]: Batch size to the largest absolute difference.

    Raises:
        ExportMismatchError: If a difference exceeds ``tolerance`` (or is
            not finite).

    Example:
        >>> check_exported('model.onnx', 'onnx', graph, [x1, x3], 1e-4)
        ... # doctest: +SKIP
        {1: 2.9e-08, 3: 4.4e-08}
    """
    differences = max_abs_differences(
        load_exported(source, fmt), reference, inputs)
    worst = max(differences.values())
    if not worst <= tolerance:  # also refuses NaN
        per_batch = ', '.join(f'batch {b}: {d:.3g}'
                              for b, d in differences.items())
        what = (f'the {fmt} export differs from PyTorch by up to '
                f'{worst:.3g}, above the tolerance {tolerance:g} '
                f'({per_batch})')
        if target is not None:
            what += '; the file was not written'
        raise ExportMismatchError(
            user_message(
                what,
                where=target or (source if isinstance(source, str) else
                                 None),
                fix='try the other ONNX exporter (--onnx-exporter) or '
                'another format, or report the model and command as a bug'))
    return differences
