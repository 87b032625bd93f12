"""timm, MAE and MoCo v3 ViT checkpoints -> mmpretrain VisionTransformer."""
import pytest
import torch
from mmpretrain.models import VisionTransformer
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer as TimmViT

from vapt_mm.converters import (convert_mae_vit, convert_mocov3_vit,
                                convert_timm_vit, load_torch_checkpoint)

DIMS, LAYERS, HEADS, MLP, PATCH, IMG = 64, 2, 4, 128, 16, 32


def timm_vit(seed: int, num_classes: int = 0) -> TimmViT:
    """A small random timm ViT, also the stand-in for MAE / MoCo v3 encoders
    (they use timm's names)."""
    torch.manual_seed(seed)
    model = TimmViT(
        img_size=IMG,
        patch_size=PATCH,
        embed_dim=DIMS,
        depth=LAYERS,
        num_heads=HEADS,
        mlp_ratio=MLP / DIMS,
        num_classes=num_classes)
    with torch.no_grad():  # non-trivial values everywhere
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def assert_same_cls_features(state_dict: dict, reference: TimmViT) -> None:
    ours = VisionTransformer(
        arch=dict(
            embed_dims=DIMS,
            num_layers=LAYERS,
            num_heads=HEADS,
            feedforward_channels=MLP),
        img_size=IMG,
        patch_size=PATCH,
        out_type='cls_token')
    ours.load_state_dict(state_dict, strict=True)
    ours.eval()  # mmpretrain's BaseBackbone.train() returns None
    x = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        got = ours(x)[0]
        expected = reference.forward_features(x)[:, 0]
    assert got.shape == (2, DIMS)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('suffix', ['.pth', '.bin', '.safetensors'])
def test_timm_state_dict_file_converts_to_same_outputs(tmp_path, suffix):
    ref = timm_vit(seed=0, num_classes=5)
    path = tmp_path / f'model{suffix}'
    if suffix == '.safetensors':
        save_file(ref.state_dict(), str(path))
    else:
        torch.save(ref.state_dict(), path)
    state_dict = convert_timm_vit(load_torch_checkpoint(str(path)), str(path))
    assert not any(k.startswith('head') for k in state_dict)
    assert_same_cls_features(state_dict, ref)


def test_timm_training_checkpoint_with_ddp_prefix():
    ref = timm_vit(seed=1)
    wrapped = {
        'epoch': 3,
        'state_dict': {f'module.{k}': v
                       for k, v in ref.state_dict().items()}
    }
    assert_same_cls_features(convert_timm_vit(wrapped, 'train.pth'), ref)


def test_vit_base_in21k_names_and_shapes_fit_mmpretrain_vit_b():
    ref = TimmViT(
        img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
        num_classes=0)  # the geometry of vit_base_patch16_224.orig_in21k
    state_dict = convert_timm_vit(ref.state_dict(), 'orig_in21k')
    assert len(state_dict) == 150
    vit_b = VisionTransformer(arch='b', img_size=224, patch_size=16)
    vit_b.load_state_dict(state_dict, strict=True)


def test_timm_unsupported_and_missing_keys_are_named():
    sd = dict(timm_vit(seed=2).state_dict())
    sd['blocks.0.ls1.gamma'] = torch.ones(DIMS)
    with pytest.raises(
            ValueError,
            match=r"\['blocks\.0\.ls1\.gamma'\] have no counterpart"):
        convert_timm_vit(sd, 'ls.pth')
    del sd['blocks.0.ls1.gamma']
    del sd['norm.weight']
    del sd['blocks.1.attn.proj.bias']
    with pytest.raises(ValueError) as err:
        convert_timm_vit(sd, 'cut.pth')
    assert "cut.pth is not a timm ViT checkpoint: missing keys " \
           "['norm.weight', 'blocks.1.attn.proj.bias']" in str(err.value)


def test_mae_checkpoint_converts_encoder_and_drops_decoder():
    ref = timm_vit(seed=3)
    model = dict(ref.state_dict())
    # the decoder part of an MAE "full" checkpoint
    model.update({
        'mask_token': torch.zeros(1, 1, 32),
        'decoder_pos_embed': torch.zeros(1, 5, 32),
        'decoder_embed.weight': torch.zeros(32, DIMS),
        'decoder_blocks.0.norm1.weight': torch.ones(32),
        'decoder_norm.weight': torch.ones(32),
        'decoder_pred.weight': torch.zeros(PATCH * PATCH * 3, 32),
    })
    state_dict = convert_mae_vit({'model': model}, 'mae.pth')
    assert not any('decoder' in k or 'mask' in k for k in state_dict)
    assert_same_cls_features(state_dict, ref)


def test_mae_errors_name_the_missing_entry():
    with pytest.raises(ValueError, match="mae.pth has no 'model' entry"):
        convert_mae_vit({'state_dict': {}}, 'mae.pth')
    model = dict(timm_vit(seed=3).state_dict())
    del model['blocks.0.attn.qkv.weight']
    with pytest.raises(ValueError, match=r"not a MAE ViT checkpoint: missing "
                       r"keys \['blocks\.0\.attn\.qkv\.weight'\]"):
        convert_mae_vit({'model': model}, 'mae.pth')


def mocov3_checkpoint(base: TimmViT, momentum: TimmViT) -> dict:
    state = {}
    for name, encoder in (('base_encoder', base), ('momentum_encoder',
                                                   momentum)):
        for k, v in encoder.state_dict().items():
            state[f'module.{name}.{k}'] = v
        # the 3-layer projection MLP (Linear, BN, ReLU, ...) replaces head
        state[f'module.{name}.head.0.weight'] = torch.randn(96, DIMS)
        state[f'module.{name}.head.1.running_mean'] = torch.zeros(96)
        state[f'module.{name}.head.1.num_batches_tracked'] = torch.tensor(9)
    state['module.predictor.0.weight'] = torch.randn(96, 32)
    return {'epoch': 300, 'arch': 'vit_base', 'state_dict': state,
            'optimizer': {'state': {}, 'param_groups': []}}


def test_mocov3_checkpoint_converts_base_encoder(tmp_path):
    base, momentum = timm_vit(seed=4), timm_vit(seed=5)
    path = tmp_path / 'vit-b-300ep.pth.tar'
    torch.save(mocov3_checkpoint(base, momentum), path)
    ckpt = load_torch_checkpoint(str(path))  # weights_only=True
    assert_same_cls_features(convert_mocov3_vit(ckpt, str(path)), base)
    assert_same_cls_features(
        convert_mocov3_vit(ckpt, str(path), encoder='momentum_encoder'),
        momentum)


def test_mocov3_errors_name_the_expected_prefix():
    with pytest.raises(ValueError, match="moco.pth has no 'state_dict' entry"):
        convert_mocov3_vit({'model': {}}, 'moco.pth')
    plain = {'state_dict': dict(timm_vit(seed=6).state_dict())}
    with pytest.raises(ValueError, match="no key in 'state_dict' starts with "
                       "'module.base_encoder.'"):
        convert_mocov3_vit(plain, 'moco.pth')
    with pytest.raises(ValueError, match='encoder must be one of'):
        convert_mocov3_vit(plain, 'moco.pth', encoder='predictor')


def test_loading_refuses_pickled_objects_unless_trusted(tmp_path):
    import argparse
    path = tmp_path / 'with_args.pth'
    weights = {'cls_token': torch.zeros(1, 1, DIMS)}
    torch.save({'model': weights, 'args': argparse.Namespace(lr=1.0)}, path)
    with pytest.raises(ValueError, match='holds Python objects besides '
                       'tensors.*trust_pickle=True'):
        load_torch_checkpoint(str(path))
    loaded = load_torch_checkpoint(str(path), trust_pickle=True)
    assert loaded['args'].lr == 1.0
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_torch_checkpoint(str(tmp_path / 'missing.pth'))
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    with pytest.raises(ValueError, match='is not a PyTorch checkpoint'):
        load_torch_checkpoint(str(text))
