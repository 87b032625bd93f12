"""The prompt key/value fast path computes exactly what the plain path does."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from tiny_models import TINY_BACKBONES, image_size, tiny_backbone, tiny_head

import vapt_mm  # noqa: F401

NECKS = {
    'vpt-deep': dict(type='VPTNeck', deep=True, dropout=0.2),
    'vpt-shallow': dict(type='VPTNeck', deep=False, dropout=0.2),
    'vapt': dict(type='VAPTNeck', vpt_depth=1, dropout=0.2),
    'vapt-all-adaptive': dict(type='VAPTNeck', vpt_depth=0,
                              share_projector=False),
}


def _pair(family, neck, num_tokens, **extra):
    """(plain, fast) models with identical weights."""
    torch.manual_seed(0)
    cfg = dict(type='PromptedClassifier', backbone=tiny_backbone(family),
               neck=dict(NECKS[neck], num_tokens=num_tokens, fast_path=False,
                         **extra),
               head=tiny_head(family))
    plain = MODELS.build(cfg)
    with torch.no_grad():
        for p in plain.neck.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    fast = copy.deepcopy(plain)
    fast.neck.fast_path = True
    return plain, fast


def _step(model, images, labels, seed):
    torch.manual_seed(seed)
    model.zero_grad()
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    loss = model(images, samples, mode='loss')['loss']
    loss.backward()
    logits = model(images)  # same seed stream continues identically
    return loss.detach(), logits.detach(), {
        n: p.grad.clone() for n, p in model.named_parameters()
        if p.requires_grad
    }


TRAINING_CASES = [(family, neck, 6) for family in sorted(TINY_BACKBONES)
                  for neck in sorted(NECKS)]
TRAINING_CASES += [('vit', neck, 1) for neck in sorted(NECKS)]


@pytest.mark.parametrize('family, neck, num_tokens', TRAINING_CASES)
def test_fast_path_equals_plain_path_in_training(family, neck, num_tokens):
    plain, fast = _pair(family, neck, num_tokens)
    plain.train()
    fast.train()
    size = image_size(family)
    images = torch.rand(4, 3, size, size)
    labels = torch.tensor([0, 1, 2, 3])
    loss_p, logits_p, grads_p = _step(plain, images, labels, seed=3)
    loss_f, logits_f, grads_f = _step(fast, images, labels, seed=3)
    torch.testing.assert_close(loss_f, loss_p, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits_f, logits_p, atol=1e-5, rtol=0)
    assert grads_f.keys() == grads_p.keys()
    for name in grads_p:
        torch.testing.assert_close(grads_f[name], grads_p[name], atol=1e-5,
                                   rtol=1e-4, msg=name)


@pytest.mark.parametrize('neck', sorted(NECKS))
@pytest.mark.parametrize('family', ['vit', 'deit3', 'deit-distilled'])
def test_fast_path_equals_plain_path_at_inference(family, neck):
    plain, fast = _pair(family, neck, 4)
    plain.eval()
    fast.eval()
    size = image_size(family)
    images = torch.rand(3, 3, size, size)
    with torch.no_grad():
        expected = plain(images)
        first = fast(images)  # fills the key/value cache
        second = fast(images)  # reads it
    torch.testing.assert_close(first, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(second, expected, atol=1e-5, rtol=0)


def _cached_keys(model):
    """The key tensor the cache holds for block 1."""
    return model.prompt_kv_cache._entries[1][1]


def test_kv_cache_is_used_and_follows_prompt_updates():
    plain, fast = _pair('vit', 'vpt-deep', 4)
    fast.eval()
    plain.eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        fast(images)
        assert sorted(fast.prompt_kv_cache._entries) == [0, 1, 2]
        cached_k = _cached_keys(fast)
        fast(images)
        assert _cached_keys(fast) is cached_k  # reused
        # An in-place update of the prompts (as an optimizer makes, or a
        # user editing them in eval mode) is seen: the entry is recomputed.
        for model in (plain, fast):
            model.neck.prompts.prompts.add_(0.5)
        torch.testing.assert_close(fast(images), plain(images), atol=1e-5,
                                   rtol=0)
        assert _cached_keys(fast) is not cached_k
        # Loading weights, a device/dtype move and a mode switch clear it.
        fast.load_state_dict(plain.state_dict())
        assert len(fast.prompt_kv_cache) == 0
        fast(images)
        fast.float()
        assert len(fast.prompt_kv_cache) == 0
        fast(images)
        fast.train()
        assert len(fast.prompt_kv_cache) == 0
    # With autograd on, or in training mode, nothing is cached (prompts
    # are being trained and carry dropout).
    fast.eval()
    fast(images)
    assert len(fast.prompt_kv_cache) == 0
    fast.train()
    with torch.no_grad():
        fast(images)
    assert len(fast.prompt_kv_cache) == 0


def test_kv_cache_is_not_used_while_tracing():
    _, fast = _pair('vit', 'vpt-deep', 4)
    fast.eval()
    with torch.no_grad():
        torch.jit.trace(fast, torch.rand(2, 3, 32, 32), check_trace=False)
    assert len(fast.prompt_kv_cache) == 0


def test_fast_path_skips_the_plain_block_forward():
    _, fast = _pair('vit', 'vpt-deep', 4)
    calls = []
    for layer in fast.backbone.layers:
        layer.register_forward_hook(lambda *args: calls.append(1))
    fast.eval()
    fast(torch.rand(1, 3, 32, 32))
    assert calls == []
    fast.neck.fast_path = False
    fast(torch.rand(1, 3, 32, 32))
    assert len(calls) == 3


def test_shallow_prompts_flow_plainly_until_the_last_block():
    _, fast = _pair('vit', 'vpt-shallow', 4)
    calls = []
    for index, layer in enumerate(fast.backbone.layers):
        layer.register_forward_hook(
            lambda *args, index=index: calls.append(index))
    fast(torch.rand(1, 3, 32, 32))
    assert calls == [0, 1]  # the last block needs no prompt outputs


def test_forcing_the_fast_path_on_an_unsupported_block_is_an_error(
        monkeypatch):
    plain, fast = _pair('vit', 'vpt-deep', 2)
    monkeypatch.setattr(type(fast.backbone_adapter), 'prompt_kv_parts',
                        lambda self, block: None)
    with pytest.raises(TypeError, match='cannot take prompts as keys and '
                       'values only'):
        fast(torch.rand(1, 3, 32, 32))
    fast.neck.fast_path = None  # automatic: falls back to the plain path
    fast.eval()
    plain.eval()
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(fast(images), plain(images), atol=1e-6,
                               rtol=0)


@pytest.mark.parametrize('neck', ['vpt-deep', 'vapt', 'vpt-shallow'])
@pytest.mark.parametrize('fast_path', [False, True])
def test_activation_checkpointing_gives_the_same_gradients(neck, fast_path):
    plain, _ = _pair('vit', neck, 3)
    plain.neck.fast_path = fast_path
    checkpointed = copy.deepcopy(plain)
    checkpointed.neck.with_cp = True
    images = torch.rand(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 3])
    plain.train()
    checkpointed.train()
    _, logits_a, grads_a = _step(plain, images, labels, seed=5)
    _, logits_b, grads_b = _step(checkpointed, images, labels, seed=5)
    torch.testing.assert_close(logits_b, logits_a, atol=1e-6, rtol=0)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], atol=1e-6,
                                   rtol=1e-5, msg=name)


def test_fast_path_argument_is_validated():
    with pytest.raises(ValueError, match='fast_path must be None'):
        MODELS.build(
            dict(type='PromptedClassifier', backbone=tiny_backbone('vit'),
                 neck=dict(type='VPTNeck', num_tokens=2, fast_path='yes'),
                 head=tiny_head('vit')))


def test_every_tiny_family_is_on_the_fast_path():
    for family in TINY_BACKBONES:
        model = MODELS.build(
            dict(type='PromptedClassifier', backbone=tiny_backbone(family),
                 neck=dict(type='VPTNeck', num_tokens=2, deep=True,
                           fast_path=True), head=tiny_head(family)))
        size = image_size(family)
        model(torch.rand(1, 3, size, size))  # raises if any block is not
