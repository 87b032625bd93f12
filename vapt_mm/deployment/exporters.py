"""Serialise an inference graph as ONNX, a torch.export program or TorchScript.

Each exporter writes the whole file to an open binary file object, so the
caller decides where it ends up (:func:`vapt_mm.deployment.export_model`
writes through :func:`~vapt_mm.utils.atomic_io.atomic_write` and moves the
file into place only after it has been checked).

A dynamic batch is declared the way each format expects: a ``Dim`` for
dimension 0 (``torch.export`` and the torch.export-based ONNX exporter),
``dynamic_axes`` (the TorchScript-based ONNX exporter); a traced
TorchScript module records the batch size symbolically by itself.
"""
import io
import warnings
from typing import IO, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from ..utils.user_errors import ConfigError, UserError, user_message
from .inference_graph import INPUT_NAME, OUTPUT_NAME

__all__ = [
    'EXPORT_FORMATS', 'ONNX_EXPORTERS', 'write_onnx', 'write_torch_export',
    'write_torchscript'
]

#: Formats, as the command line names them.
EXPORT_FORMATS = ('onnx', 'torch_export', 'torchscript')
#: ONNX exporters of torch.onnx.export: ``dynamo=True`` (torch.export-based,
#: the default since torch 2.9) and ``dynamo=False`` (TorchScript-based,
#: deprecated).
ONNX_EXPORTERS = ('dynamo', 'torchscript')

# Protobuf cannot serialise a single ONNX file above 2 GiB.
_ONNX_MAX_BYTES = 2**31


def _batch_dim() -> 'torch.export.Dim':
    return torch.export.Dim('batch')


def _require(module: str, package: str) -> None:
    try:
        __import__(module)
    except ImportError as error:
        raise UserError(
            user_message(
                f'{package} is not installed',
                fix=f'pip install {package} (or pip install -e '
                '".[optional]")')) from error


def write_onnx(graph: nn.Module,
               example: torch.Tensor,
               file: IO[bytes],
               dynamic_batch: bool,
               exporter: str = 'dynamo',
               opset: Optional[int] = None,
               metadata: Optional[Dict[str, str]] = None) -> None:
    """Export ``graph`` to ONNX and write the model to ``file``.

    Args:
        graph (nn.Module): ``images -> logits`` in eval mode.
        example (Tensor): Example images; with ``dynamic_batch`` their batch
            size must be at least 2 (torch.export specialises 0 and 1).
        file (IO[bytes]): Where the ONNX bytes go.
        dynamic_batch (bool): Declare the batch dimension dynamic.
        exporter (str): ``'dynamo'`` (default) or ``'torchscript'``.
        opset (int, optional): ONNX opset; the exporter's default if None.
        metadata (dict, optional): Strings stored in the model's
            ``metadata_props`` (e.g. the normalisation the input needs).

    Raises:
        ConfigError: For an unknown exporter, or a model above 2 GiB.

    Example:
        >>> with open('model.onnx', 'wb') as f:  # doctest: +SKIP
        ...     write_onnx(graph, torch.randn(2, 3, 224, 224), f, True)
    """
    _require('onnx', 'onnx')
    import onnx
    if exporter not in ONNX_EXPORTERS:
        raise ConfigError(
            user_message(
                f'unknown ONNX exporter {exporter!r}',
                where='--onnx-exporter',
                fix=f'use one of {", ".join(ONNX_EXPORTERS)}'))
    num_bytes = sum(p.numel() * p.element_size() for p in graph.parameters())
    if num_bytes >= _ONNX_MAX_BYTES:
        raise ConfigError(
            user_message(
                f'the model has {num_bytes / 2**30:.1f} GiB of weights; a '
                'single ONNX file holds at most 2 GiB',
                fix='use --format torch_export for this model'))
    common = dict(
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset)
    if exporter == 'dynamo':
        _require('onnxscript', 'onnxscript')
        dynamic = dict(
            dynamic_shapes={'images': {
                0: _batch_dim()
            }}) if dynamic_batch else {}
        program = torch.onnx.export(
            graph, (example, ), None, dynamo=True, verbose=False, **common,
            **dynamic)
        model = program.model_proto
    else:
        dynamic = dict(dynamic_axes={
            INPUT_NAME: {
                0: 'batch'
            },
            OUTPUT_NAME: {
                0: 'batch'
            }
        }) if dynamic_batch else {}
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            # its deprecation notice; the choice is the user's
            warnings.simplefilter('ignore', DeprecationWarning)
            torch.onnx.export(
                graph, (example, ), buffer, dynamo=False, **common,
                **dynamic)
        model = onnx.load_model_from_string(buffer.getvalue())
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    file.write(model.SerializeToString())


def write_torch_export(graph: nn.Module, example: torch.Tensor,
                       file: IO[bytes], dynamic_batch: bool) -> None:
    """``torch.export.export`` the graph and save the program to ``file``.

    Load it back with ``torch.export.load(path).module()``.

    Args:
        graph (nn.Module): ``images -> logits`` in eval mode.
        example (Tensor): Example images (batch >= 2 with a dynamic batch).
        file (IO[bytes]): Where the ``.pt2`` archive goes.
        dynamic_batch (bool): Declare the batch dimension dynamic.

    Example:
        >>> with open('model.pt2', 'wb') as f:  # doctest: +SKIP
        ...     write_torch_export(graph, torch.randn(2, 3, 224, 224), f,
        ...                        True)
    """
    dynamic_shapes = {'images': {0: _batch_dim()}} if dynamic_batch else None
    program = torch.export.export(
        graph, (example, ), dynamic_shapes=dynamic_shapes)
    torch.export.save(program, file)


def write_torchscript(graph: nn.Module,
                      example: torch.Tensor,
                      file: IO[bytes],
                      check_inputs: Sequence[torch.Tensor] = ()) -> None:
    """``torch.jit.trace`` the graph with its consistency check and save it.

    The trace is checked by torch (``check_trace``): it is traced again on
    each of ``check_inputs`` and the graphs and outputs must agree, which
    also shows that the batch size was recorded symbolically.

    Args:
        graph (nn.Module): ``images -> logits`` in eval mode.
        example (Tensor): Example images.
        file (IO[bytes]): Where the TorchScript archive goes.
        check_inputs (Sequence[Tensor]): Further images to check the trace
            on (e.g. other batch sizes).

    Raises:
        torch.jit.TracingCheckError: If the trace is not consistent.

    Example:
        >>> with open('model.ts', 'wb') as f:  # doctest: +SKIP
        ...     write_torchscript(graph, torch.randn(2, 3, 224, 224), f)
    """
    inputs: List[tuple] = [(example, )] + [(x, ) for x in check_inputs]
    with torch.no_grad(), warnings.catch_warnings():
        # TracerWarnings point at Python-side shape checks that are
        # constants for a fixed image size; the check below is what counts.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        traced = torch.jit.trace(
            graph, (example, ), check_trace=True, check_inputs=inputs)
    torch.jit.save(traced, file)
