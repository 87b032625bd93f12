"""Convert a timm ViT state dict (``.safetensors``/``.bin``/``.pth``, e.g.
``vit_base_patch16_224.orig_in21k``) into mmpretrain ``VisionTransformer``
weights.

Example:
    python tools/model_converters/timm_vit_to_mmpretrain.py \
        model.safetensors checkpoints/vit-b16_in21k.pth
"""
import sys

from vapt_mm.converters import convert_timm_vit, run_converter_cli

if __name__ == '__main__':
    sys.exit(
        run_converter_cli(
            'Convert a timm VisionTransformer state dict into mmpretrain '
            'VisionTransformer weights (the head is dropped).',
            convert_timm_vit))
