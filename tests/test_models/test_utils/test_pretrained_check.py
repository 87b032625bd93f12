"""check_pretrained_checkpoint: the errors a wrong pretrained file gives."""
import re

import pytest
import torch
from mmpretrain.models import VisionTransformer

from vapt_mm.models.utils.pretrained_check import check_pretrained_checkpoint

ARCH = dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)


def tiny_vit(img_size: int = 32, **kwargs) -> VisionTransformer:
    return VisionTransformer(
        arch=ARCH, img_size=img_size, patch_size=16, **kwargs)


def save(path, state_dict, wrap='state_dict'):
    torch.save({wrap: state_dict} if wrap else state_dict, path)
    return str(path)


def test_good_checkpoints_pass(tmp_path):
    vit = tiny_vit()
    sd = vit.state_dict()
    assert check_pretrained_checkpoint(vit, save(tmp_path / 'a.pth',
                                                 sd)) is None
    # a plain dict, a DDP prefix and extra (head) keys are fine, as in mmengine
    plain = {f'module.{k}': v for k, v in sd.items()}
    plain['head.weight'] = torch.zeros(3, 64)
    check_pretrained_checkpoint(vit, save(tmp_path / 'b.pth', plain, None))
    prefixed = {f'backbone.{k}': v for k, v in sd.items()}
    path = save(tmp_path / 'c.pth', prefixed)
    check_pretrained_checkpoint(vit, path, prefix='backbone.')
    check_pretrained_checkpoint(vit, path, prefix='backbone')


def test_pos_embed_of_another_grid_passes_and_mmpretrain_resizes_it(tmp_path):
    source = tiny_vit(img_size=48)  # 3x3 grid: pos_embed (1, 10, 64)
    target = tiny_vit(img_size=32)  # 2x2 grid: pos_embed (1, 5, 64)
    path = save(tmp_path / 'vit48.pth', source.state_dict())
    check_pretrained_checkpoint(target, path)
    # the check agrees with what mmpretrain's Pretrained init then does
    loaded = tiny_vit(
        img_size=32, init_cfg=dict(type='Pretrained', checkpoint=path))
    loaded.init_weights()
    assert loaded.pos_embed.shape == (1, 5, 64)
    torch.testing.assert_close(loaded.cls_token, source.cls_token)


def test_missing_file_names_path_and_docs(tmp_path):
    path = str(tmp_path / 'checkpoints' / 'vit-b16_in21k.pth')
    with pytest.raises(FileNotFoundError) as err:
        check_pretrained_checkpoint(tiny_vit(), path)
    assert path in str(err.value)
    assert 'docs/pretrained_weights.md' in str(err.value)


def test_missing_keys_are_all_listed(tmp_path):
    vit = tiny_vit()
    sd = vit.state_dict()
    for key in ('layers.1.attn.qkv.weight', 'ln1.bias', 'cls_token'):
        del sd[key]
    with pytest.raises(ValueError) as err:
        check_pretrained_checkpoint(vit, save(tmp_path / 'cut.pth', sd))
    msg = str(err.value)
    assert '3 backbone key(s) missing from the checkpoint' in msg
    for key in ('layers.1.attn.qkv.weight', 'ln1.bias', 'cls_token'):
        assert re.search(rf'^    {re.escape(key)}$', msg, re.M), key
    assert 'layers.0.attn.qkv.weight' not in msg
    assert 'docs/pretrained_weights.md' in msg


def test_shape_mismatches_give_key_and_both_shapes(tmp_path):
    vit = tiny_vit()
    wide = VisionTransformer(
        arch=dict(ARCH, feedforward_channels=96), img_size=32, patch_size=16)
    sd = wide.state_dict()
    sd['pos_embed'] = torch.zeros(1, 5, 80)  # a width change is not resized
    with pytest.raises(ValueError) as err:
        check_pretrained_checkpoint(vit, save(tmp_path / 'wide.pth', sd))
    msg = str(err.value)
    # fc1 weight + bias and fc2 weight in each of 2 layers, and pos_embed
    assert '7 shape mismatch(es)' in msg
    assert ('layers.0.ffn.layers.0.0.weight: checkpoint (96, 64), '
            'expected (128, 64)') in msg
    assert 'layers.1.ffn.layers.1.weight: checkpoint (64, 96), ' \
           'expected (64, 128)' in msg
    assert 'pos_embed: checkpoint (1, 5, 80), expected (1, 5, 64)' in msg
    assert 'missing' not in msg


def test_prefix_problems_are_explained(tmp_path):
    vit = tiny_vit()
    prefixed = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    path = save(tmp_path / 'prefixed.pth', prefixed)
    with pytest.raises(ValueError, match="keys start with 'backbone.'; use "
                       "init_cfg prefix='backbone.'"):
        check_pretrained_checkpoint(vit, path)
    plain = save(tmp_path / 'plain.pth', vit.state_dict())
    with pytest.raises(ValueError, match="no key starting with prefix "
                       "'backbone.'"):
        check_pretrained_checkpoint(vit, plain, prefix='backbone.')


def test_unconverted_and_unsafe_files_are_refused(tmp_path):
    import argparse
    vit = tiny_vit()
    model_wrapped = save(tmp_path / 'mae.pth', vit.state_dict(), wrap='model')
    with pytest.raises(ValueError, match="keeps its weights under 'model'"):
        check_pretrained_checkpoint(vit, model_wrapped)
    pickled = tmp_path / 'args.pth'
    torch.save({'state_dict': vit.state_dict(),
                'args': argparse.Namespace(lr=1)}, pickled)
    with pytest.raises(ValueError, match='cannot be loaded with '
                       'weights_only=True'):
        check_pretrained_checkpoint(vit, str(pickled))
    npz = tmp_path / 'ViT-B_16.npz'
    npz.write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(ValueError, match='is not a PyTorch checkpoint'):
        check_pretrained_checkpoint(vit, str(npz))
