"""Convert Google's ViT ``.npz`` (e.g. ``ViT-B_16.npz``, ImageNet-21k) into
mmpretrain ``VisionTransformer`` weights.

Example:
    python tools/model_converters/vit_npz_to_mmpretrain.py \
        ViT-B_16.npz checkpoints/vit-b16_in21k.pth
"""
import sys

from vapt_mm.converters import (convert_google_vit, load_google_vit_npz,
                                run_converter_cli)

if __name__ == '__main__':
    sys.exit(
        run_converter_cli(
            "Convert Google's ViT .npz checkpoint into mmpretrain "
            'VisionTransformer weights (pre_logits and head are dropped).',
            convert_google_vit,
            load=load_google_vit_npz))
