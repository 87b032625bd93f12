"""Convert the official MAE ViT pre-training checkpoint
(``mae_pretrain_vit_base.pth``) into mmpretrain ``VisionTransformer``
weights.

Example:
    python tools/model_converters/mae_vit_to_mmpretrain.py \
        mae_pretrain_vit_base.pth checkpoints/vit-b16_mae.pth
"""
import sys

from vapt_mm.converters import convert_mae_vit, run_converter_cli

if __name__ == '__main__':
    sys.exit(
        run_converter_cli(
            'Convert an MAE ViT checkpoint ({"model": ...}) into mmpretrain '
            'VisionTransformer weights (the decoder is dropped).',
            convert_mae_vit))
