"""Export a trained classifier to ONNX, torch.export or TorchScript, checked.

The exported graph maps normalised images ``(B, 3, H, W)`` (what the
config's data preprocessor gives: RGB, ``(x - mean) / std``) at the
backbone's image size to class logits ``(B, num_classes)``, the
classifier's ``'tensor'`` mode; softmax and normalisation stay outside.
The file is loaded back and run on random images (onnxruntime for ONNX)
before it is written; the largest absolute difference of the logits from
PyTorch is printed, and above ``--tolerance`` nothing is written and the
tool exits with status 1. docs/deploy.md has the details.

Example:
    ONNX with a dynamic batch (checked at batch 1 and 3)::

        python tools/deployment/export.py \\
            configs/vapt/vit-b16_vtab-eurosat.py \\
            work_dirs/vit-b16_vtab-eurosat/epoch_100.pth \\
            --format onnx --dynamic-batch --out vapt_eurosat.onnx

    A torch.export program (``torch.export.load(path).module()``)::

        python tools/deployment/export.py CONFIG WEIGHTS \\
            --format torch_export --dynamic-batch --out vapt_eurosat.pt2
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction
from mmengine.logging import MMLogger

from vapt_mm.deployment import (EXPORT_FORMATS, ONNX_EXPORTERS,
                                ExportResult, build_classifier, export_model)
from vapt_mm.utils.user_errors import add_debug_argument, run_tool


def set_log_level(verbose: bool) -> None:
    """mmengine's INFO logs (init_weights reports) only with ``--verbose``."""
    level = 'INFO' if verbose else 'WARNING'
    if MMLogger.check_instance_created('vapt_mm.export'):
        MMLogger.get_instance('vapt_mm.export').setLevel(level)
    else:
        MMLogger.get_instance('vapt_mm.export', log_level=level)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments without the program name.
            Defaults to ``sys.argv[1:]``.

    Example:
        >>> parse_args(['cfg.py', 'w.pth', '--format', 'onnx', '--out',
        ...             'm.onnx']).dynamic_batch
        False
    """
    parser = argparse.ArgumentParser(
        description='Export a classifier (images -> logits) and check the '
        'exported file against PyTorch.')
    parser.add_argument('config', help='the training config')
    parser.add_argument(
        'weights',
        help='checkpoint: a full one, or a trainable-only one (prompts and '
        'head; the backbone is loaded from the config\'s Pretrained file)')
    parser.add_argument(
        '--format', required=True, choices=EXPORT_FORMATS,
        help='onnx, torch_export (a .pt2 ExportedProgram) or torchscript '
        '(torch.jit.trace)')
    parser.add_argument('--out', required=True, help='the file to write')
    parser.add_argument(
        '--dynamic-batch',
        action='store_true',
        help='make the batch size dynamic (checked at batch 1 and 3)')
    parser.add_argument(
        '--batch-size',
        type=int,
        help='the fixed batch size without --dynamic-batch (default: 1)')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=1e-4,
        help='largest allowed absolute difference of the logits from '
        'PyTorch (default: %(default)g)')
    parser.add_argument(
        '--onnx-exporter',
        choices=ONNX_EXPORTERS,
        default='dynamo',
        help='torch.onnx.export with dynamo=True (torch.export-based, the '
        'default) or dynamo=False (TorchScript-based, deprecated by torch)')
    parser.add_argument(
        '--opset', type=int, help='ONNX opset (default: the exporter\'s)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the check images')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show mmengine\'s INFO logs (default: warnings only)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.dynamic_batch and args.batch_size is not None:
        parser.error('--batch-size fixes the batch size; leave it out with '
                     '--dynamic-batch')
    if args.batch_size is None:
        args.batch_size = 1
    return args


def format_result(result: ExportResult, tolerance: float) -> str:
    """The lines the tool prints after a successful export.

    Example:
        >>> print(format_result(ExportResult('/m.onnx', 'onnx',
        ...                                  (None, 3, 32, 32),
        ...                                  {1: 1e-8, 3: 3e-8}), 1e-4))
        wrote /m.onnx (onnx, input images (batch, 3, 32, 32) -> logits)
        max abs difference from PyTorch: batch 1: 1e-08, batch 3: 3e-08
        largest: 3e-08 (tolerance 0.0001): OK
    """
    shape = ', '.join('batch' if d is None else str(d)
                      for d in result.input_shape)
    per_batch = ', '.join(f'batch {b}: {d:.3g}'
                          for b, d in result.differences.items())
    return '\n'.join([
        f'wrote {result.path} ({result.fmt}, input images ({shape}) -> '
        'logits)',
        f'max abs difference from PyTorch: {per_batch}',
        f'largest: {result.max_difference:.3g} (tolerance {tolerance:g}): OK'
    ])


def main(argv: Optional[List[str]] = None) -> ExportResult:
    """Build the model, export it, check it and print the differences.

    Args:
        argv (list[str], optional): Arguments without the program name.

    Returns:
        ExportResult: The written file and the measured differences.

    Example:
        >>> main(['cfg.py', 'epoch_100.pth', '--format', 'onnx',
        ...       '--dynamic-batch', '--out', 'm.onnx'])  # doctest: +SKIP
    """
    args = parse_args(argv)
    set_log_level(args.verbose)
    model = build_classifier(args.config, args.weights, args.cfg_options)
    result = export_model(
        model,
        args.out,
        args.format,
        dynamic_batch=args.dynamic_batch,
        batch_size=args.batch_size,
        tolerance=args.tolerance,
        onnx_exporter=args.onnx_exporter,
        opset=args.opset,
        seed=args.seed)
    print(format_result(result, args.tolerance))
    return result


if __name__ == '__main__':
    sys.exit(run_tool(main, 'export.py'))
