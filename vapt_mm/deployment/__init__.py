"""Deployment: export to ONNX / torch.export / TorchScript, checked against
PyTorch, and class-activation maps of prompted ViTs.

Imported by the deployment tools only (``tools/deployment/export.py``,
``tools/visualization/vis_cam.py``), so ``import vapt_mm`` stays light; the
optional packages (onnx, onnxruntime, onnxscript, grad-cam) are imported
when they are used.
"""
from .cam import (CAM_METHODS, PromptedViTCAM, TokenGridReshape,
                  default_cam_target_layer, overlay_cam)
from .consistency import (ExportMismatchError, check_exported,
                          load_exported, max_abs_differences)
from .export import DYNAMIC_CHECK_BATCH_SIZES, ExportResult, export_model
from .exporters import EXPORT_FORMATS, ONNX_EXPORTERS
from .inference_graph import (ImageClassifierLogits, model_input_size,
                              random_images)
from .model_loading import build_classifier, load_config, load_weights

__all__ = [
    'CAM_METHODS', 'PromptedViTCAM', 'TokenGridReshape',
    'default_cam_target_layer', 'overlay_cam',
    'ExportMismatchError', 'check_exported', 'load_exported',
    'max_abs_differences', 'DYNAMIC_CHECK_BATCH_SIZES', 'ExportResult',
    'export_model', 'EXPORT_FORMATS', 'ONNX_EXPORTERS',
    'ImageClassifierLogits', 'model_input_size', 'random_images',
    'build_classifier', 'load_config', 'load_weights'
]
