"""Extract the prompt file of a training checkpoint.

Reads a checkpoint written by ``tools/train.py`` (full or trainable-only)
and writes a prompt file: the prompt neck's and the head's tensors as
safetensors (no pickle) with a JSON header (model config, backbone
fingerprint, class names). The model comes from the config stored in the
checkpoint (``meta['cfg']``) or ``--config``; the class names from
``--classes`` or the checkpoint's ``meta['dataset_meta']``. See
docs/deploy.md ("Prompt files").

Example:
    ::

        python tools/model_converters/extract_prompts.py \\
            work_dirs/vit-b16_vtab-eurosat/epoch_100.pth eurosat.safetensors

    Class names from a file, one per line::

        python tools/model_converters/extract_prompts.py epoch_100.pth \\
            eurosat.safetensors --classes @classes.txt
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from vapt_mm.apis.prompt_file import save_prompt_file
from vapt_mm.utils.user_errors import add_debug_argument, run_tool


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Example:
        >>> parse_args(['epoch_1.pth', 'p.safetensors']).config is None
        True
    """
    parser = argparse.ArgumentParser(
        description='Write the prompt file (prompts + head, safetensors) of '
        'a training checkpoint',
        fromfile_prefix_chars='@')
    parser.add_argument('checkpoint', help='full or trainable-only .pth')
    parser.add_argument('out', help='the prompt file to write (.safetensors)')
    parser.add_argument(
        '--config',
        help="the training config (default: the one stored in the "
        "checkpoint's meta)")
    parser.add_argument(
        '--classes',
        nargs='+',
        help='class names in label order (@FILE reads them from a file, '
        "one per line; default: the checkpoint's dataset_meta)")
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Extract and print a summary.

    Returns:
        dict: The header written.

    Example:
        >>> main(['epoch_100.pth', 'eurosat.safetensors'])  # doctest: +SKIP
    """
    args = parse_args(argv)
    header = save_prompt_file(
        args.checkpoint, args.out, classes=args.classes, config=args.config)
    structure = header['structure']
    classes = header['classes'] or []
    shown = ', '.join(classes[:5]) + (', ...' if len(classes) > 5 else '')
    neck = ('no prompt neck (linear probe)' if structure['neck'] is None
            else f'{structure["neck"]} '
            f'(num_tokens={structure.get("num_tokens")})')
    print(f'Wrote {args.out} ({osp.getsize(args.out) / 1024:.1f} kB): '
          f'{neck}, '
          f'{structure["head"]} with {structure["num_classes"]} classes'
          f'{f" ({shown})" if classes else ""}; backbone '
          f'{structure["backbone"]} {header["backbone"]["fingerprint"]}.')
    return header


if __name__ == '__main__':
    sys.exit(run_tool(main, 'extract_prompts.py'))
