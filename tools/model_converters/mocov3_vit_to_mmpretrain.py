"""Convert the official MoCo v3 ViT pre-training checkpoint
(``vit-b-300ep.pth.tar``) into mmpretrain ``VisionTransformer`` weights.

Example:
    python tools/model_converters/mocov3_vit_to_mmpretrain.py \
        vit-b-300ep.pth.tar checkpoints/vit-b16_mocov3.pth
"""
import sys

from vapt_mm.converters import convert_mocov3_vit, run_converter_cli

if __name__ == '__main__':
    sys.exit(
        run_converter_cli(
            'Convert the base encoder of a MoCo v3 ViT checkpoint '
            '(state_dict with module.base_encoder.*) into mmpretrain '
            'VisionTransformer weights (the projection head is dropped).',
            convert_mocov3_vit))
