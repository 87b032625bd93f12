"""Export a classifier and check the exported file before it is kept."""
import io
import os.path as osp
from typing import Dict, NamedTuple, Optional, Sequence

import torch.nn as nn

from ..utils.atomic_io import atomic_write
from ..utils.user_errors import ConfigError, user_message
from .consistency import check_exported
from .exporters import (EXPORT_FORMATS, ONNX_EXPORTERS, write_onnx,
                        write_torch_export, write_torchscript)
from .inference_graph import (ImageClassifierLogits, model_input_size,
                              random_images)

__all__ = ['ExportResult', 'export_model', 'DYNAMIC_CHECK_BATCH_SIZES']

#: Batch sizes a dynamic-batch export is checked at (the example it is
#: exported with has batch 2, so both differ from it).
DYNAMIC_CHECK_BATCH_SIZES = (1, 3)
_DYNAMIC_EXAMPLE_BATCH = 2


class ExportResult(NamedTuple):
    """What :func:`export_model` wrote and how close it is to PyTorch.

    Args:
        path (str): The exported file.
        fmt (str): Its format.
        input_shape (tuple): ``(B, 3, H, W)`` of the input; B is ``None``
            for a dynamic batch.
        differences (dict[int, float]): Batch size to the largest absolute
            difference of the logits from PyTorch's.
    """
    path: str
    fmt: str
    input_shape: tuple
    differences: Dict[int, float]

    @property
    def max_difference(self) -> float:
        """The largest difference over all checked batch sizes."""
        return max(self.differences.values())


def _preprocess_metadata(classifier: nn.Module) -> Dict[str, str]:
    """The normalisation the exported graph's input needs, as strings."""
    preprocessor = getattr(classifier, 'data_preprocessor', None)
    meta = dict(input='normalised images (B, 3, H, W)', output='logits')
    for key in ('mean', 'std'):
        value = getattr(preprocessor, key, None)
        if value is not None:
            # float32 buffers; 7 significant digits give back the config's
            # numbers (123.675, not 123.675003)
            meta[key] = str([float(f'{v:.7g}') for v in value.flatten()])
    if hasattr(preprocessor, 'to_rgb'):  # mmpretrain's ClsDataPreprocessor
        meta['to_rgb'] = str(bool(preprocessor.to_rgb))
    return meta


def export_model(classifier: nn.Module,
                 path: str,
                 fmt: str,
                 dynamic_batch: bool = False,
                 batch_size: int = 1,
                 tolerance: float = 1e-4,
                 onnx_exporter: str = 'dynamo',
                 opset: Optional[int] = None,
                 seed: int = 0,
                 check_batch_sizes: Optional[Sequence[int]] = None
                 ) -> ExportResult:
    """Export ``classifier`` as ``images -> logits`` and check the file.

    The exported model is serialised in memory, loaded back from those
    bytes (onnxruntime for ONNX, ``torch.export.load`` or
    ``torch.jit.load``), run on random images and compared with the PyTorch
    model; only when the largest absolute difference of the logits is at
    most ``tolerance`` are the bytes written to ``path`` (atomically).

    The exported graph is
    :class:`~vapt_mm.deployment.inference_graph.ImageClassifierLogits`: the
    classifier's ``'tensor'`` mode (logits, no softmax) on normalised images
    at the backbone's image size.

    Args:
        classifier (nn.Module): The classifier (weights loaded).
        path (str): The output file.
        fmt (str): ``'onnx'``, ``'torch_export'`` or ``'torchscript'``.
        dynamic_batch (bool): Make the batch size dynamic; the file is then
            checked at batch sizes 1 and 3. Defaults to False.
        batch_size (int): The fixed batch size without ``dynamic_batch``.
            Defaults to 1.
        tolerance (float): Largest allowed absolute difference from
            PyTorch. Defaults to 1e-4.
        onnx_exporter (str): ``'dynamo'`` (default) or ``'torchscript'``.
        opset (int, optional): ONNX opset.
        seed (int): Seed of the random check images. Defaults to 0.
        check_batch_sizes (Sequence[int], optional): Batch sizes to check a
            dynamic-batch export at. Defaults to (1, 3).

    Returns:
        ExportResult: The file and the measured differences.

    Raises:
        ConfigError: For an unknown format or exporter, a batch size
            below 1 or a negative tolerance.
        ExportMismatchError: If the file differs from PyTorch by more than
            ``tolerance``; nothing is written then.

    Example:
        >>> model = build_classifier(config, weights)  # doctest: +SKIP
        >>> result = export_model(model, 'vapt.onnx', 'onnx',
        ...                       dynamic_batch=True)  # doctest: +SKIP
        >>> result.max_difference < 1e-4  # doctest: +SKIP
        True
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(
            user_message(
                f'unknown export format {fmt!r}',
                where='--format',
                fix=f'use one of {", ".join(EXPORT_FORMATS)}'))
    if onnx_exporter not in ONNX_EXPORTERS:
        raise ConfigError(
            user_message(
                f'unknown ONNX exporter {onnx_exporter!r}',
                where='--onnx-exporter',
                fix=f'use one of {", ".join(ONNX_EXPORTERS)}'))
    if batch_size < 1:
        raise ConfigError(
            user_message(
                f'the batch size must be at least 1, got {batch_size}',
                where='--batch-size'))
    if not tolerance >= 0:
        raise ConfigError(
            user_message(
                f'the tolerance must be a number >= 0, got {tolerance}',
                where='--tolerance'))
    graph = ImageClassifierLogits(classifier)
    size = model_input_size(classifier)
    if dynamic_batch:
        example = random_images(_DYNAMIC_EXAMPLE_BATCH, size, seed)
        sizes = tuple(check_batch_sizes or DYNAMIC_CHECK_BATCH_SIZES)
    else:
        example = random_images(batch_size, size, seed)
        sizes = (batch_size, )
    checks = [
        random_images(n, size, seed + 1 + i) for i, n in enumerate(sizes)
    ]

    buffer = io.BytesIO()
    if fmt == 'onnx':
        write_onnx(graph, example, buffer, dynamic_batch, onnx_exporter,
                   opset, _preprocess_metadata(classifier))
    elif fmt == 'torch_export':
        write_torch_export(graph, example, buffer, dynamic_batch)
    else:
        write_torchscript(graph, example, buffer,
                          checks if dynamic_batch else ())
    data = buffer.getvalue()
    # Checked before anything is written: a mismatch leaves ``path`` as it
    # was.
    differences = check_exported(
        data, fmt, graph, checks, tolerance, target=path)
    with atomic_write(path, 'wb') as file:
        file.write(data)
    input_shape = (None if dynamic_batch else batch_size, 3) + tuple(size)
    return ExportResult(osp.abspath(path), fmt, input_shape, differences)
