"""One frozen backbone, many prompt-tuned tasks, one backbone pass.

The reference for every sample is its task's single-task
``PromptedClassifier`` (sharing the backbone object) run on the images of
that task alone.
"""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from tiny_models import TINY_ARCH, image_size, tiny_backbone, tiny_head

import vapt_mm  # noqa: F401
from vapt_mm.models import MultiTaskPromptedClassifier, PromptedClassifier
from vapt_mm.models.utils.multi_task_forward import plan_mixed_blocks
from vapt_mm.utils.user_errors import CheckpointError, ConfigError

NECKS = {
    'vpt-shallow': dict(type='VPTNeck', deep=False, dropout=0.3),
    'vpt-deep': dict(type='VPTNeck', deep=True, dropout=0.3),
    'vapt': dict(type='VAPTNeck', vpt_depth=1, dropout=0.3),
    'vapt-all-adaptive': dict(type='VAPTNeck', vpt_depth=0,
                              share_projector=False),
}

TINY_TIMM_VIT = dict(
    type='TIMMBackbone', model_name='vit_tiny_patch16_224', img_size=32,
    patch_size=8, embed_dim=TINY_ARCH['embed_dims'], depth=3, num_heads=2,
    mlp_ratio=2.0)


def _randomise(module, seed):
    """Random weights: VAPT's zero-initialised projectors would make every
    adaptive prompt zero and hide most of the computation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.5)


def single_task_models(family, tasks, fast_path=None):
    """name -> eval-mode PromptedClassifier; all share one backbone object.

    ``tasks`` maps a name to (neck kind, num_tokens); task ``i`` has
    ``3 + i`` classes.
    """
    torch.manual_seed(0)
    if family == 'timm':
        backbone, head = TINY_TIMM_VIT, tiny_head('vit')
        extra = dict(adapter_cfg=dict(out_pool='cls'))
    else:
        backbone, head = tiny_backbone(family), tiny_head(family)
        extra = {}
    models = {}
    shared = None
    for i, (name, (kind, num_tokens)) in enumerate(tasks.items()):
        neck = dict(NECKS[kind], num_tokens=num_tokens)
        if fast_path is not None:
            neck['fast_path'] = fast_path
        model = PromptedClassifier(
            backbone=shared if shared is not None else copy.deepcopy(
                backbone),
            neck=neck,
            head=dict(head, num_classes=3 + i),
            **extra)
        _randomise(model.neck, seed=i)
        _randomise(model.head, seed=100 + i)
        shared = model.backbone
        models[name] = model.eval()
    return models


def mixed_order(names, batch):
    """Task per sample, interleaved and not sorted by task."""
    order = [names[(3 * i + i // len(names)) % len(names)]
             for i in range(batch)]
    assert set(order) == set(names)
    return order


def assert_matches_single_task(multi, singles, images, tasks):
    with torch.no_grad():
        logits = multi(images, tasks=tasks)
        for name, single in singles.items():
            positions = [i for i, t in enumerate(tasks) if t == name]
            expected = single(images[positions])
            got = torch.stack([logits[i] for i in positions])
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0,
                                       msg=f'task {name}')


MIXES = {
    'vpt-shallow': dict(a=('vpt-shallow', 3)),
    'vpt-deep': dict(a=('vpt-deep', 3)),
    'vapt': dict(a=('vapt', 3)),
    'vpt-shallow-lengths': dict(a=('vpt-shallow', 4), b=('vpt-shallow', 1)),
    'vpt-deep-lengths': dict(a=('vpt-deep', 1), b=('vpt-deep', 5)),
    'vapt-lengths': dict(a=('vapt', 2), b=('vapt-all-adaptive', 6)),
    'all-necks': dict(a=('vpt-shallow', 2), b=('vpt-deep', 5),
                      c=('vapt', 3), d=('vapt-all-adaptive', 1),
                      e=('vpt-deep', 2)),
    'same-length': dict(a=('vpt-deep', 4), b=('vapt', 4)),
}


@pytest.mark.parametrize('fast_path', [True, False])
@pytest.mark.parametrize('mix', sorted(MIXES))
def test_mixed_batch_equals_single_task_models(mix, fast_path):
    singles = single_task_models('vit', MIXES[mix], fast_path)
    multi = MultiTaskPromptedClassifier.from_classifiers(singles)
    assert multi.backbone is next(iter(singles.values())).backbone
    images = torch.rand(9, 3, 32, 32)
    assert_matches_single_task(multi, singles, images,
                               mixed_order(list(singles), 9))


@pytest.mark.parametrize('family', ['deit3', 'deit-distilled',
                                    'dinov2-layer-scale', 'timm'])
@pytest.mark.parametrize('fast_path', [None, False])
def test_other_backbone_families(family, fast_path):
    singles = single_task_models(family, MIXES['all-necks'], fast_path)
    multi = MultiTaskPromptedClassifier.from_classifiers(singles)
    size = image_size(family)
    images = torch.rand(8, 3, size, size)
    assert_matches_single_task(multi, singles, images,
                               mixed_order(list(singles), 8))


def test_backbone_features_in_input_order():
    singles = single_task_models('vit', MIXES['all-necks'])
    multi = MultiTaskPromptedClassifier.from_classifiers(singles)
    images = torch.rand(7, 3, 32, 32)
    tasks = mixed_order(list(singles), 7)
    with torch.no_grad():
        feats = multi.extract_feat(images, tasks)
        for i, task in enumerate(tasks):
            alone = singles[task].extract_feat(images[i:i + 1],
                                               stage='backbone')
            torch.testing.assert_close(feats[0][i:i + 1], alone[0],
                                       atol=1e-5, rtol=0)


def test_fast_path_plan_of_mixed_batches():
    singles = single_task_models('vit', MIXES['all-necks'])
    adapter = next(iter(singles.values())).backbone_adapter
    necks = {name: model.neck for name, model in singles.items()}

    def fast_blocks(*names):
        steps = plan_mixed_blocks(adapter, [necks[n] for n in names])
        return [step.fast_parts is not None for step in steps]

    # Deep prompts of any kind and length: every block on the fast path.
    assert fast_blocks('b', 'c', 'd', 'e') == [True, True, True]
    # Shallow prompts flow into the next block: only the last is fast.
    assert fast_blocks('a') == [False, False, True]
    assert fast_blocks('a', 'b') == [False, False, True]
    # One task with fast_path=False keeps the batch on the plain path.
    necks['c'].fast_path = False
    assert fast_blocks('b', 'c') == [False, False, False]


def test_predict_and_test_step_with_tasks_in_data_samples():
    singles = single_task_models('vit', MIXES['all-necks'])
    multi = MultiTaskPromptedClassifier.from_classifiers(singles)
    tasks = mixed_order(list(singles), 7)
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    samples = [DataSample(metainfo=dict(task=t)).set_gt_label(0)
               for t in tasks]
    results = multi.test_step(dict(inputs=list(images),
                                   data_samples=samples))
    shorthand = multi.predict(images.float(), tasks)
    for i, (task, result) in enumerate(zip(tasks, results)):
        expected = singles[task].test_step(
            dict(inputs=[images[i]],
                 data_samples=[DataSample().set_gt_label(0)]))[0]
        assert result.task == task
        assert result.pred_score.shape == (3 + list(singles).index(task), )
        torch.testing.assert_close(result.pred_score, expected.pred_score,
                                   atol=1e-5, rtol=0)
        assert int(result.pred_label) == int(expected.pred_label)
        assert result.gt_label.tolist() == [0]
        assert shorthand[i].task == task
        torch.testing.assert_close(shorthand[i].pred_score,
                                   result.pred_score, atol=1e-5, rtol=0)


def test_tasks_added_and_removed_without_touching_the_backbone():
    singles = single_task_models('vit', MIXES['all-necks'])
    names = list(singles)
    multi = MultiTaskPromptedClassifier.from_classifiers(
        {n: singles[n] for n in names[:2]})
    backbone = multi.backbone
    pointers = {n: p.data_ptr() for n, p in backbone.named_parameters()}
    backbone_size = sum(p.numel() for p in multi.parameters())
    for name in names[2:]:
        multi.add_task(name, singles[name].neck, singles[name].head)
    added = sum(p.numel() for n in names[2:]
                for part in (singles[n].neck, singles[n].head)
                for p in part.parameters())
    # Memory grows by the tasks' prompt modules and heads, nothing else.
    assert sum(p.numel() for p in multi.parameters()) == backbone_size + added
    images = torch.rand(6, 3, 32, 32)
    assert_matches_single_task(multi, singles, images,
                               mixed_order(names, 6))
    multi.remove_task('b')
    assert multi.task_names == [n for n in names if n != 'b']
    rest = {n: singles[n] for n in multi.task_names}
    assert_matches_single_task(multi, rest, images,
                               mixed_order(list(rest), 6))
    with pytest.raises(ConfigError, match=r"Unknown task\(s\) \['b'\]"):
        multi(images[:1], tasks=['b'])
    assert multi.backbone is backbone
    assert pointers == {
        n: p.data_ptr() for n, p in backbone.named_parameters()}
    assert not any(p.requires_grad for p in backbone.parameters())


def test_built_from_config_and_loaded():
    singles = single_task_models('vit', dict(a=('vpt-deep', 2),
                                             b=('vapt', 5)))
    cfg = dict(
        type='MultiTaskPromptedClassifier',
        backbone=tiny_backbone('vit'),
        tasks=dict(
            a=dict(neck=dict(type='VPTNeck', num_tokens=2, deep=True),
                   head=dict(tiny_head('vit'), num_classes=3)),
            b=dict(neck=dict(type='VAPTNeck', num_tokens=5),
                   head=dict(tiny_head('vit'), num_classes=4))))
    multi = MODELS.build(cfg)
    state = dict(singles['a'].backbone.state_dict(prefix='backbone.'))
    for name, single in singles.items():
        state.update(single.neck.state_dict(prefix=f'necks.{name}.'))
        state.update(single.head.state_dict(prefix=f'heads.{name}.'))
    assert sorted(multi.state_dict()) == sorted(state)
    multi.load_state_dict(state, strict=True)
    multi.eval()
    assert_matches_single_task(multi, singles, torch.rand(5, 3, 32, 32),
                               ['a', 'b', 'b', 'a', 'b'])


def test_backbone_fingerprint_is_one_comparison():
    singles = single_task_models('vit', MIXES['all-necks'])
    model = singles['a']
    multi = MultiTaskPromptedClassifier(backbone=model.backbone)
    multi.add_task('a', model.neck, model.head, fingerprint='sha256:aaaa')
    assert multi.backbone_fingerprint == 'sha256:aaaa'
    multi.add_task('b', singles['b'].neck, singles['b'].head,
                   fingerprint='sha256:aaaa')
    with pytest.raises(CheckpointError) as error:
        multi.add_task('c', singles['c'].neck, singles['c'].head,
                       fingerprint='sha256:bbbb')
    assert "Task 'c' was trained on another backbone" in str(error.value)
    assert 'sha256:bbbb' in str(error.value)
    assert 'sha256:aaaa' in str(error.value)
    assert multi.task_names == ['a', 'b']
    fixed = MultiTaskPromptedClassifier(
        backbone=model.backbone, backbone_fingerprint='sha256:cccc')
    with pytest.raises(CheckpointError, match='sha256:cccc'):
        fixed.add_task('a', model.neck, model.head, fingerprint='sha256:aaaa')


def test_tasks_on_other_backbone_weights_are_refused():
    singles = single_task_models('vit', MIXES['vapt'])
    other = PromptedClassifier(
        backbone=tiny_backbone('vit'),
        neck=dict(type='VPTNeck', num_tokens=2),
        head=tiny_head('vit')).eval()
    # Equal weights in another backbone object are accepted.
    other.backbone.load_state_dict(singles['a'].backbone.state_dict())
    multi = MultiTaskPromptedClassifier.from_classifiers(
        dict(a=singles['a'], other=other))
    assert multi.task_names == ['a', 'other']
    with torch.no_grad():
        other.backbone.layers[1].ln1.weight[0] += 1e-3
    with pytest.raises(CheckpointError, match='other weights.*\n.*backbone '
                       "key 'layers.1.ln1.weight'"):
        MultiTaskPromptedClassifier.from_classifiers(
            dict(a=singles['a'], other=other))


def test_other_preprocessing_is_refused():
    singles = single_task_models('vit', MIXES['vapt'])
    other = PromptedClassifier(
        backbone=singles['a'].backbone,
        neck=dict(type='VPTNeck', num_tokens=2),
        head=tiny_head('vit'),
        data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3))
    with pytest.raises(ConfigError, match="Task 'other' preprocesses"):
        MultiTaskPromptedClassifier.from_classifiers(
            dict(a=singles['a'], other=other))


def test_tasks_with_their_own_backbone_parameters_are_refused():
    singles = single_task_models('vit', MIXES['vapt'])
    tuned_norm = PromptedClassifier(
        backbone=tiny_backbone('vit'),
        neck=dict(type='VPTNeck', num_tokens=2),
        head=tiny_head('vit'), frozen_exclude=[r'^ln1\.'])
    tuned_norm.backbone.load_state_dict(singles['a'].backbone.state_dict())
    with pytest.raises(ConfigError, match=r"Task 'ln' trained backbone "
                       r"parameters.*\n.*\['ln1.weight', 'ln1.bias'\]"):
        MultiTaskPromptedClassifier.from_classifiers(
            dict(a=singles['a'], ln=tuned_norm))
    assert tuned_norm.backbone.ln1.weight.requires_grad  # left as it was


def test_bad_task_requests_are_refused():
    singles = single_task_models('vit', MIXES['vpt-deep-lengths'])
    multi = MultiTaskPromptedClassifier.from_classifiers(singles)
    images = torch.rand(2, 3, 32, 32)
    with pytest.raises(ConfigError, match=r"\['x'\]\.\n.*\['a', 'b'\]"):
        multi(images, tasks=['a', 'x'])
    with pytest.raises(ConfigError, match='1 task names for a batch of 2'):
        multi(images, tasks=['a'])
    with pytest.raises(ConfigError, match=r'Data samples \[1\] name no task'):
        multi.predict(images, [DataSample(metainfo=dict(task='a')),
                               DataSample()])
    with pytest.raises(ConfigError, match='name different tasks'):
        multi.predict(images, [DataSample(metainfo=dict(task='a')),
                               DataSample(metainfo=dict(task='a'))],
                      tasks=['a', 'b'])
    with pytest.raises(ConfigError, match="no training mode='loss'"):
        multi(images, [DataSample().set_gt_label(0)] * 2, mode='loss')
    with pytest.raises(ConfigError, match="Task 'a' exists already"):
        multi.add_task('a', dict(type='VPTNeck', num_tokens=2),
                       tiny_head('vit'))
    with pytest.raises(ConfigError, match="Invalid task name 'a.b'"):
        multi.add_task('a.b', dict(type='VPTNeck', num_tokens=2),
                       tiny_head('vit'))
    with pytest.raises(ValueError, match='does not fit backbone'):
        multi.add_task('c', MODELS.build(dict(
            type='VPTNeck', num_tokens=2, embed_dims=32, num_layers=5,
            patch_size=8, patch_grid=4)), tiny_head('vit'))
    # One name for the whole batch.
    assert [len(x) for x in multi(images, tasks='b')] == [4, 4]


def test_backbone_stays_frozen_and_in_eval_mode():
    singles = single_task_models('vit', MIXES['vapt-lengths'])
    multi = MultiTaskPromptedClassifier.from_classifiers(singles)
    multi.train()
    assert not multi.backbone.training
    assert all(neck.training for neck in multi.necks.values())
    multi.eval()
    assert not any(neck.training for neck in multi.necks.values())
