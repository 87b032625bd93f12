"""The command line shared by ``tools/model_converters/*_to_mmpretrain.py``."""
import argparse
from typing import Any, Callable, Dict, List, Optional

import torch
from mmengine.logging import print_log

from ..utils.user_errors import add_debug_argument, run_tool
from .checkpoint_io import load_torch_checkpoint, save_backbone_state_dict
from .mmpretrain_vit_layout import check_vit_geometry, describe_vit_geometry

__all__ = ['run_converter_cli']

Converter = Callable[[Any, str], Dict[str, torch.Tensor]]


def run_converter_cli(description: str,
                      convert: Converter,
                      load: Optional[Callable[[str], Any]] = None,
                      argv: Optional[List[str]] = None) -> int:
    """Parse ``src dst [--prefix P]``, convert ``src`` and write ``dst``.

    Prints the number of tensors written and the backbone geometry. A
    missing or malformed source (a
    :class:`~vapt_mm.utils.user_errors.UserError`) is reported on stderr
    without a traceback (with one under ``--debug``) and exit code 1.

    Args:
        description (str): The ``--help`` text.
        convert (Callable): ``convert(loaded_source, source_name)`` returning
            mmpretrain backbone weights.
        load (Callable, optional): Reads ``src``. Defaults to
            :func:`load_torch_checkpoint` (which then gets a
            ``--trust-pickle`` flag).
        argv (list[str], optional): Arguments; defaults to ``sys.argv[1:]``.

    Returns:
        int: The process exit code (0 on success).

    Example:
        >>> from vapt_mm.converters import convert_timm_vit
        >>> run_converter_cli('timm ViT -> mmpretrain', convert_timm_vit,
        ...                   argv=['vit.pth', 'checkpoints/vit.pth'])
        0
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='the checkpoint to convert')
    parser.add_argument('dst', help='where to write the mmpretrain weights')
    parser.add_argument(
        '--prefix',
        default='',
        help="prepend this to every key, e.g. 'backbone.' for a whole-"
        "classifier checkpoint (then use init_cfg prefix='backbone.'); "
        'default: no prefix, keys as VisionTransformer names them')
    if load is None:
        parser.add_argument(
            '--trust-pickle',
            action='store_true',
            help='load src with torch.load(weights_only=False); only for '
            'files from a source you trust')
    add_debug_argument(parser)
    args = parser.parse_args(argv)

    def convert_and_save() -> None:
        if load is None:
            source = load_torch_checkpoint(args.src, args.trust_pickle)
        else:
            source = load(args.src)
        state_dict = convert(source, args.src)
        count = save_backbone_state_dict(state_dict, args.dst, args.prefix)
        geometry = check_vit_geometry(state_dict, args.src)
        print_log(f'Wrote {count} tensors to {args.dst} '
                  f'({describe_vit_geometry(geometry)}).')

    return run_tool(convert_and_save, parser.prog, debug=args.debug)
