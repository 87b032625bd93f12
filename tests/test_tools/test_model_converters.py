"""tools/model_converters/*_to_mmpretrain.py run as a user would run them."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmpretrain.models import VisionTransformer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'model_converters')
DIMS, LAYERS, HEADS, MLP = 64, 2, 4, 128
# a 2-layer, 64-wide ViT has 4 + 12 * 2 + 2 = 30 tensors
NUM_TENSORS = 30


def timm_names(seed: int) -> dict:
    """Random weights under timm ViT names (timm, MAE, MoCo v3 encoders)."""
    g = torch.Generator().manual_seed(seed)
    sd = {
        'cls_token': torch.randn(1, 1, DIMS, generator=g),
        'pos_embed': torch.randn(1, 5, DIMS, generator=g),
        'patch_embed.proj.weight': torch.randn(DIMS, 3, 16, 16, generator=g),
        'patch_embed.proj.bias': torch.randn(DIMS, generator=g),
        'norm.weight': torch.randn(DIMS, generator=g),
        'norm.bias': torch.randn(DIMS, generator=g),
    }
    shapes = {
        'norm1': (DIMS, ), 'attn.qkv': (3 * DIMS, DIMS),
        'attn.proj': (DIMS, DIMS), 'norm2': (DIMS, ),
        'mlp.fc1': (MLP, DIMS), 'mlp.fc2': (DIMS, MLP)
    }
    for i in range(LAYERS):
        for part, shape in shapes.items():
            sd[f'blocks.{i}.{part}.weight'] = torch.randn(*shape, generator=g)
            sd[f'blocks.{i}.{part}.bias'] = torch.randn(shape[0], generator=g)
    return sd


def google_npz_arrays() -> dict:
    rng = np.random.default_rng(0)
    w = {
        'embedding/kernel': rng.standard_normal((16, 16, 3, DIMS)),
        'embedding/bias': rng.standard_normal(DIMS),
        'cls': rng.standard_normal((1, 1, DIMS)),
        'Transformer/posembed_input/pos_embedding':
        rng.standard_normal((1, 5, DIMS)),
        'Transformer/encoder_norm/scale': rng.standard_normal(DIMS),
        'Transformer/encoder_norm/bias': rng.standard_normal(DIMS),
        'head/kernel': rng.standard_normal((DIMS, 10)),
        'head/bias': rng.standard_normal(10),
    }
    for i in range(LAYERS):
        b = f'Transformer/encoderblock_{i}/'
        att = b + 'MultiHeadDotProductAttention_1/'
        for ln in ('LayerNorm_0', 'LayerNorm_2'):
            w[f'{b}{ln}/scale'] = rng.standard_normal(DIMS)
            w[f'{b}{ln}/bias'] = rng.standard_normal(DIMS)
        for name in ('query', 'key', 'value'):
            w[f'{att}{name}/kernel'] = rng.standard_normal((DIMS, HEADS, 16))
            w[f'{att}{name}/bias'] = rng.standard_normal((HEADS, 16))
        w[att + 'out/kernel'] = rng.standard_normal((HEADS, 16, DIMS))
        w[att + 'out/bias'] = rng.standard_normal(DIMS)
        w[b + 'MlpBlock_3/Dense_0/kernel'] = rng.standard_normal((DIMS, MLP))
        w[b + 'MlpBlock_3/Dense_0/bias'] = rng.standard_normal(MLP)
        w[b + 'MlpBlock_3/Dense_1/kernel'] = rng.standard_normal((MLP, DIMS))
        w[b + 'MlpBlock_3/Dense_1/bias'] = rng.standard_normal(DIMS)
    return {k: v.astype(np.float32) for k, v in w.items()}


def run_tool(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, osp.join(TOOLS, script), *args],
                          capture_output=True,
                          text=True,
                          env=env,
                          cwd=ROOT,
                          timeout=300)


def assert_loads_into_tiny_vit(path: str, prefix: str = '') -> dict:
    ckpt = torch.load(path, weights_only=True)
    sd = {k[len(prefix):]: v for k, v in ckpt['state_dict'].items()}
    assert all(k.startswith(prefix) for k in ckpt['state_dict'])
    vit = VisionTransformer(
        arch=dict(
            embed_dims=DIMS,
            num_layers=LAYERS,
            num_heads=HEADS,
            feedforward_channels=MLP),
        img_size=32,
        patch_size=16)
    vit.load_state_dict(sd, strict=True)
    return sd


def write_source(kind: str, folder) -> str:
    if kind == 'npz':
        path = folder / 'ViT-B_16.npz'
        np.savez(path, **google_npz_arrays())
    elif kind == 'timm':
        path = folder / 'model.pth'
        torch.save(timm_names(1), path)
    elif kind == 'mae':
        path = folder / 'mae_pretrain_vit_base.pth'
        model = timm_names(2)
        model['mask_token'] = torch.zeros(1, 1, 32)
        torch.save({'model': model}, path)
    else:
        path = folder / 'vit-b-300ep.pth.tar'
        state = {f'module.base_encoder.{k}': v
                 for k, v in timm_names(3).items()}
        state['module.base_encoder.head.0.weight'] = torch.zeros(8, DIMS)
        state.update({f'module.momentum_encoder.{k}': v
                      for k, v in timm_names(4).items()})
        torch.save({'epoch': 300, 'state_dict': state}, path)
    return str(path)


@pytest.mark.parametrize('script,kind', [
    ('vit_npz_to_mmpretrain.py', 'npz'),
    ('timm_vit_to_mmpretrain.py', 'timm'),
    ('mae_vit_to_mmpretrain.py', 'mae'),
    ('mocov3_vit_to_mmpretrain.py', 'mocov3'),
])
def test_cli_converts_a_tiny_checkpoint(tmp_path, script, kind):
    src = write_source(kind, tmp_path)
    dst = str(tmp_path / 'out' / 'vit.pth')
    prefix = 'backbone.' if kind == 'mae' else ''
    extra = ['--prefix', prefix] if prefix else []
    result = run_tool(script, src, dst, *extra)
    assert result.returncode == 0, result.stderr
    assert f'Wrote {NUM_TENSORS} tensors to {dst}' in result.stdout
    assert 'embed_dims=64, num_layers=2' in result.stdout
    sd = assert_loads_into_tiny_vit(dst, prefix)
    if kind == 'npz':
        kernel = google_npz_arrays()['embedding/kernel']
        np.testing.assert_array_equal(
            sd['patch_embed.projection.weight'].numpy(),
            kernel.transpose(3, 2, 0, 1))
    else:
        seed = dict(timm=1, mae=2, mocov3=3)[kind]
        torch.testing.assert_close(sd['layers.1.ffn.layers.1.weight'],
                                   timm_names(seed)['blocks.1.mlp.fc2.weight'])


def test_cli_reports_a_file_of_the_wrong_format(tmp_path, capsys):
    # the error path runs in-process: the scripts only call run_converter_cli
    from vapt_mm.converters import convert_mae_vit, run_converter_cli
    src = write_source('timm', tmp_path)  # not a MAE file: no 'model' entry
    dst = tmp_path / 'vit.pth'
    code = run_converter_cli('mae', convert_mae_vit, argv=[src, str(dst)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{src} has no 'model' entry" in err
    assert not dst.exists()
    code = run_converter_cli(
        'mae', convert_mae_vit, argv=[str(tmp_path / 'absent.pth'), str(dst)])
    assert code == 1
    assert 'absent.pth' in capsys.readouterr().err
