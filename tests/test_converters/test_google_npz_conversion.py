"""Google ViT .npz -> mmpretrain VisionTransformer conversion."""
import numpy as np
import pytest
import torch
from mmpretrain.models import VisionTransformer
from timm.models.vision_transformer import VisionTransformer as TimmViT
from timm.models.vision_transformer import _load_weights

from vapt_mm.converters import (convert_google_vit, load_google_vit_npz,
                                save_backbone_state_dict)

DIMS, LAYERS, HEADS, MLP, PATCH, IMG, CLASSES = 64, 2, 4, 128, 16, 32, 7


def google_vit_arrays(seed: int = 0) -> dict:
    """Random arrays named and shaped like Google's ViT-B_16.npz."""
    rng = np.random.default_rng(seed)
    hd, tokens = DIMS // HEADS, (IMG // PATCH)**2 + 1

    def rand(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def scale(n):
        return (1.0 + rng.standard_normal(n) * 0.1).astype(np.float32)

    w = {
        'embedding/kernel': rand(PATCH, PATCH, 3, DIMS, scale=0.05),
        'embedding/bias': rand(DIMS),
        'cls': rand(1, 1, DIMS),
        'Transformer/posembed_input/pos_embedding': rand(1, tokens, DIMS),
        'Transformer/encoder_norm/scale': scale(DIMS),
        'Transformer/encoder_norm/bias': rand(DIMS),
        'pre_logits/kernel': rand(DIMS, DIMS),
        'pre_logits/bias': rand(DIMS),
        'head/kernel': rand(DIMS, CLASSES),
        'head/bias': rand(CLASSES),
    }
    for i in range(LAYERS):
        b = f'Transformer/encoderblock_{i}/'
        att = b + 'MultiHeadDotProductAttention_1/'
        w.update({
            b + 'LayerNorm_0/scale': scale(DIMS),
            b + 'LayerNorm_0/bias': rand(DIMS),
            b + 'LayerNorm_2/scale': scale(DIMS),
            b + 'LayerNorm_2/bias': rand(DIMS),
            att + 'out/kernel': rand(HEADS, hd, DIMS),
            att + 'out/bias': rand(DIMS),
            b + 'MlpBlock_3/Dense_0/kernel': rand(DIMS, MLP),
            b + 'MlpBlock_3/Dense_0/bias': rand(MLP),
            b + 'MlpBlock_3/Dense_1/kernel': rand(MLP, DIMS),
            b + 'MlpBlock_3/Dense_1/bias': rand(DIMS),
        })
        for name in ('query', 'key', 'value'):
            w[att + f'{name}/kernel'] = rand(DIMS, HEADS, hd)
            w[att + f'{name}/bias'] = rand(HEADS, hd)
    return w


def mmpretrain_vit(**kwargs) -> VisionTransformer:
    return VisionTransformer(
        arch=dict(
            embed_dims=DIMS,
            num_layers=LAYERS,
            num_heads=HEADS,
            feedforward_channels=MLP),
        img_size=IMG,
        patch_size=PATCH,
        out_type='cls_token',
        **kwargs)


@pytest.fixture(scope='module')
def npz_path(tmp_path_factory):
    path = tmp_path_factory.mktemp('npz') / 'ViT-tiny_16.npz'
    np.savez(path, **google_vit_arrays())
    return str(path)


def test_converted_vit_matches_timm_loading_same_npz(npz_path):
    state_dict = convert_google_vit(load_google_vit_npz(npz_path), npz_path)
    assert not any('head' in k or 'pre_logits' in k for k in state_dict)

    ours = mmpretrain_vit()
    ours.load_state_dict(state_dict, strict=True)
    ours.eval()  # mmpretrain's BaseBackbone.train() returns None
    ref = TimmViT(
        img_size=IMG,
        patch_size=PATCH,
        embed_dim=DIMS,
        depth=LAYERS,
        num_heads=HEADS,
        mlp_ratio=MLP / DIMS,
        num_classes=0).eval()
    _load_weights(ref, npz_path)

    x = torch.randn(3, 3, IMG, IMG, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = ours(x)[0]
        expected = ref.forward_features(x)[:, 0]
    assert got.shape == (3, DIMS)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the tokens are far from trivially equal: the CLS features vary
    assert got.std() > 0.1


def test_saved_file_loads_weights_only_and_through_init_cfg(
        npz_path, tmp_path):
    state_dict = convert_google_vit(load_google_vit_npz(npz_path), npz_path)
    dst = tmp_path / 'sub' / 'vit.pth'
    assert save_backbone_state_dict(state_dict, str(dst)) == len(state_dict)
    loaded = torch.load(dst, weights_only=True)
    assert set(loaded) == {'state_dict'}
    assert list(loaded['state_dict']) == list(state_dict)

    vit = mmpretrain_vit(
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    vit.init_weights()
    for key, value in vit.state_dict().items():
        torch.testing.assert_close(value, state_dict[key], rtol=0, atol=0)

    prefixed = tmp_path / 'prefixed.pth'
    save_backbone_state_dict(state_dict, str(prefixed), prefix='backbone.')
    vit = mmpretrain_vit(
        init_cfg=dict(
            type='Pretrained', checkpoint=str(prefixed), prefix='backbone.'))
    vit.init_weights()
    torch.testing.assert_close(vit.pos_embed.data, state_dict['pos_embed'])


def test_qkv_layout_matches_per_head_kernels():
    arrays = google_vit_arrays(seed=3)
    state_dict = convert_google_vit(arrays)
    att = 'Transformer/encoderblock_1/MultiHeadDotProductAttention_1/'
    qkv = state_dict['layers.1.attn.qkv.weight']
    hd = DIMS // HEADS
    # output row (which * DIMS + head * hd + j) reads kernel[:, head, j]
    for which, name in enumerate(('query', 'key', 'value')):
        kernel = arrays[att + f'{name}/kernel']
        for head in (0, HEADS - 1):
            rows = qkv[which * DIMS + head * hd:which * DIMS + (head + 1) * hd]
            np.testing.assert_array_equal(rows.numpy(), kernel[:, head, :].T)


def test_missing_arrays_are_named():
    arrays = google_vit_arrays()
    del arrays['Transformer/encoder_norm/scale']
    del arrays['Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias']
    with pytest.raises(ValueError) as err:
        convert_google_vit(arrays, 'broken.npz')
    msg = str(err.value)
    assert 'broken.npz is not a Google ViT .npz checkpoint' in msg
    assert 'Transformer/encoder_norm/scale' in msg
    assert 'Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias' in msg


def test_wrong_shape_is_named():
    arrays = google_vit_arrays()
    key = 'Transformer/encoderblock_0/MlpBlock_3/Dense_0/bias'
    arrays[key] = arrays[key][:-1]
    with pytest.raises(
            ValueError,
            match=r'layers\.0\.ffn\.layers\.0\.0\.bias: '
            r'got \(127,\), expected \(128,\)'):
        convert_google_vit(arrays, 'odd.npz')


def test_files_that_are_not_npz_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.npz'):
        load_google_vit_npz(str(tmp_path / 'nowhere.npz'))
    text = tmp_path / 'notes.npz'
    text.write_text('not an archive')
    with pytest.raises(ValueError, match='is not a Google ViT .npz archive'):
        load_google_vit_npz(str(text))
    torch_file = tmp_path / 'weights.npz'
    torch.save({'w': torch.zeros(2)}, torch_file)
    with pytest.raises(ValueError, match="missing keys \\['embedding/kernel'"):
        convert_google_vit(load_google_vit_npz(str(torch_file)), 'weights.npz')
