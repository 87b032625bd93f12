"""tools/test.py tests a trainable-only checkpoint exactly, with or without
TrainableCheckpointHook in the config, and refuses a checkpoint that does
not fit (non-zero exit, an error naming the keys and the file)."""
import glob
import itertools
import os.path as osp
import pickle
import re

import pytest
import torch
from mmengine.config import Config
from test_train_helpers import (SPLITS, TASK, assert_ok, load_tool,
                                predict_in_process, read_json_logs, run_tool,
                                write_tiny_config, write_tiny_pretrained,
                                write_tiny_vtab1k)

from vapt_mm.models.classifiers import backbone_fingerprint
from vapt_mm.utils.user_errors import CheckpointError

test_tool = load_tool('test.py', 'vapt_mm_tools_test_loading')

WITHOUT_HOOK = """
custom_hooks = [dict(type='ParameterReportHook'),
                dict(type='FrozenWeightGuardHook')]
"""
_runs = itertools.count()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One epoch of VAPT, trainable-only checkpoint (the default runtime's
    TrainableCheckpointHook), and configs with and without the hook."""
    root = tmp_path_factory.mktemp('test_loading')
    data_root = str(root / 'vtab-1k')
    lists = write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(root / 'vit.pth'))
    with_hook = write_tiny_config(
        str(root / 'with_hook.py'), data_root, pretrained, max_epochs=1)
    without_hook = write_tiny_config(
        str(root / 'without_hook.py'), data_root, pretrained, max_epochs=1,
        extra=WITHOUT_HOOK)
    work_dir = str(root / 'work')
    assert_ok(
        run_tool('train.py', [with_hook, '--work-dir', work_dir],
                 cwd=str(root)))
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    assert torch.load(checkpoint)['meta']['trainable_only'] is True
    count, start = SPLITS['test']
    images = [
        osp.join(data_root, TASK, rel)
        for rel, _ in lists['test'][:count]
    ]
    labels = [label for _, label in lists['test']]
    return dict(
        root=root,
        data_root=data_root,
        pretrained=pretrained,
        with_hook=with_hook,
        without_hook=without_hook,
        checkpoint=checkpoint,
        images=images,
        labels=labels)


def test_trainable_only_checkpoint_without_the_hook(trained, tmp_path):
    config = Config.fromfile(trained['without_hook'])
    assert not any(h['type'] == 'TrainableCheckpointHook'
                   for h in config.custom_hooks)
    out = str(tmp_path / 'preds.pkl')
    proc = run_tool('test.py', [
        trained['without_hook'], trained['checkpoint'], '--work-dir',
        str(tmp_path), '--out', out
    ], cwd=str(tmp_path))
    assert_ok(proc)

    # the scores of the trained model, computed without the Runner
    reference = predict_in_process(trained['with_hook'], trained['checkpoint'],
                                   trained['images'])
    with open(out, 'rb') as f:
        dumped = pickle.load(f)
    scores = torch.stack([d['pred_score'] for d in dumped])
    torch.testing.assert_close(scores, reference, rtol=0, atol=1e-6)
    labels = torch.tensor(trained['labels'])
    expected = 100.0 * float((reference.argmax(1) == labels).float().mean())
    reported = [
        r['accuracy/top1'] for r in read_json_logs(str(tmp_path))
        if 'accuracy/top1' in r
    ]
    assert reported == [pytest.approx(expected)]


def _test_in_process(config, checkpoint, work_dir, *options):
    return test_tool.main([
        config, checkpoint, '--work-dir', str(work_dir), '--cfg-options',
        f'experiment_name=test_loading_{next(_runs)}', *options
    ])


def _vpt_checkpoint(trained):
    """A trainable-only VPT-deep checkpoint, as tools/train.py writes it."""
    from mmpretrain.registry import MODELS

    from vapt_mm.engine.hooks.trainable_checkpoint_hook import \
        drop_frozen_weights
    config = write_tiny_config(
        str(trained['root'] / 'vpt.py'), trained['data_root'],
        trained['pretrained'], neck='vpt-deep')
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    checkpoint = dict(meta={}, state_dict=model.state_dict())
    drop_frozen_weights(model, checkpoint)
    path = str(trained['root'] / 'vpt_epoch_1.pth')
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize('row', [
    'num_classes', 'num_tokens', 'backbone_only', 'vpt_into_vapt',
    'other_backbone'
])
def test_checkpoints_that_do_not_fit_are_refused(trained, tmp_path, row):
    checkpoint, options = trained['checkpoint'], []
    if row == 'num_classes':
        # a checkpoint trained for 5 classes (the config's data has 10, so
        # the config cannot be changed instead: the preflight refuses it)
        state = torch.load(checkpoint)
        for key in ('head.fc.weight', 'head.fc.bias'):
            state['state_dict'][key] = state['state_dict'][key][:5].clone()
        checkpoint = str(tmp_path / 'five_classes.pth')
        torch.save(state, checkpoint)
        expected = [r'head\.fc\.weight: file \(5, 64\), model \(10, 64\)']
    elif row == 'num_tokens':
        options = ['model.neck.num_tokens=2']
        expected = [r'neck\.static_prompts\.prompts: file \(\d+, 4, 64\), '
                    r'model \(\d+, 2, 64\)']
    elif row == 'backbone_only':
        checkpoint = trained['pretrained']
        expected = [r'missing: +head\.fc\.bias', r'unexpected: +cls_token']
    elif row == 'vpt_into_vapt':
        checkpoint = _vpt_checkpoint(trained)
        expected = [r'missing: +neck\.generators\.0\.kernel',
                    r'unexpected: +neck\.prompts\.prompts']
    else:
        other = str(tmp_path / 'other_vit.pth')
        torch.manual_seed(99)
        state = torch.load(trained['pretrained'])['state_dict']
        state = {k: v + 0.01 * torch.randn_like(v) for k, v in state.items()}
        torch.save(dict(state_dict=state), other)
        options = [f'model.backbone.init_cfg.checkpoint={other}']
        trained_on = backbone_fingerprint(
            torch.load(trained['pretrained'])['state_dict'])
        expected = [
            re.escape(p) for p in (trained['pretrained'], other, trained_on,
                                   backbone_fingerprint(state))
        ]
    with pytest.raises(CheckpointError) as error:
        _test_in_process(trained['without_hook'], checkpoint, tmp_path,
                         *options)
    message = str(error.value)
    assert f'checkpoint {checkpoint}' in message
    for pattern in expected:
        assert re.search(pattern, message, re.MULTILINE), (pattern, message)

    if row == 'other_backbone':
        # the documented option loads it anyway
        metrics = _test_in_process(
            trained['without_hook'], checkpoint, tmp_path / 'allowed',
            *options, 'model.allow_other_backbone_weights=True')
        assert 0.0 <= metrics['accuracy/top1'] <= 100.0


def test_a_refused_checkpoint_exits_non_zero(trained, tmp_path):
    checkpoint = _vpt_checkpoint(trained)
    proc = run_tool('test.py', [
        trained['with_hook'], checkpoint, '--work-dir',
        str(tmp_path)
    ], cwd=str(tmp_path))
    assert proc.returncode != 0
    assert 'CheckpointError' in proc.stderr or 'error:' in proc.stderr
    assert f'checkpoint {checkpoint}' in proc.stderr
    assert 'neck.prompts.prompts' in proc.stderr
    assert not glob.glob(osp.join(str(tmp_path), '*', '*.json'))
