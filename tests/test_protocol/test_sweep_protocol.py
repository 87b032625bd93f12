"""The protocol pieces of the sweep: lr scaling, choice of the best pair,
task lists and the options/commands each run gets."""
import random

import pytest

from vapt_mm.protocol.hyperparameters import (DEFAULT_BASE_LRS, DEFAULT_SEEDS,
                                              DEFAULT_WEIGHT_DECAYS,
                                              check_grid_values, check_seeds,
                                              format_number, scaled_lr,
                                              select_best)
from vapt_mm.protocol.runs import (final_run, grid_run, merge_options,
                                   run_options, task_options, train_command)
from vapt_mm.protocol.suites import expand_tasks, get_suite


def test_published_defaults():
    assert DEFAULT_BASE_LRS == (50, 25, 10, 5, 2.5, 1, 0.5, 0.25, 0.1, 0.05)
    assert DEFAULT_WEIGHT_DECAYS == (0.01, 0.001, 0.0001, 0)
    assert DEFAULT_SEEDS == (42, 44, 82, 100, 800)


@pytest.mark.parametrize('base_lr,batch,expected', [(50, 64, 12.5),
                                                    (0.05, 64, 0.0125),
                                                    (25, 128, 12.5),
                                                    (2.5, 4, 0.0390625)])
def test_scaled_lr(base_lr, batch, expected):
    assert scaled_lr(base_lr, batch) == pytest.approx(expected)


def test_scaled_lr_rejects_bad_batch():
    with pytest.raises(ValueError, match='batch size must be a positive'):
        scaled_lr(1.0, 0)


def test_select_best_takes_the_highest_score():
    scores = {(lr, wd): 50.0 for lr in DEFAULT_BASE_LRS
              for wd in DEFAULT_WEIGHT_DECAYS}
    scores[(5.0, 0.001)] = 81.5
    scores[(0.1, 0.0)] = 81.0
    assert select_best(scores) == (5.0, 0.001)


def test_select_best_breaks_ties_by_smaller_lr_then_larger_wd():
    scores = {(50.0, 0.01): 70.0, (10.0, 0.0): 80.0, (1.0, 0.0): 80.0,
              (1.0, 0.0001): 80.0, (0.5, 0.01): 79.9}
    expected = (1.0, 0.0001)
    assert select_best(scores) == expected
    # independent of the order the scores come in
    items = list(scores.items())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        assert select_best(dict(items)) == expected


def test_select_best_ignores_float_noise_in_scores():
    # 80.0 logged through float32 arithmetic in one run, 80.0 in another
    scores = {(10.0, 0.0): 80.00000000001, (1.0, 0.0): 80.0}
    assert select_best(scores) == (1.0, 0.0)


def test_select_best_rejects_missing_scores():
    with pytest.raises(ValueError, match=r'\(lr, wd\)=\(1.0, 0.0\).*None'):
        select_best({(1.0, 0.0): None})
    with pytest.raises(ValueError, match='no validation scores'):
        select_best({})


@pytest.mark.parametrize('value,text', [(50.0, '50'), (2.5, '2.5'),
                                        (1e-4, '0.0001'), (0.0, '0'),
                                        (1e-5, '0.00001'), (0.05, '0.05')])
def test_format_number(value, text):
    assert format_number(value) == text
    assert float(text) == value


def test_grid_and_seed_validation_messages():
    with pytest.raises(ValueError, match=r"--lrs: 0.0 is not a valid value"):
        check_grid_values('--lrs', [1, 0], allow_zero=False)
    with pytest.raises(ValueError, match='--wds: duplicate values'):
        check_grid_values('--wds', [0.1, 0.1], allow_zero=True)
    with pytest.raises(ValueError, match='--wds: -1.0 is not a valid'):
        check_grid_values('--wds', [-1], allow_zero=True)
    with pytest.raises(ValueError, match='--seeds: duplicate seeds'):
        check_seeds([42, 42])


def test_expand_tasks_groups_and_order():
    spec = get_suite('VTAB1k')
    assert expand_tasks(spec, ['all']) == list(spec.tasks)
    assert len(expand_tasks(spec, ['all'])) == 19
    assert expand_tasks(spec, ['Structured', 'eurosat']) == [
        'eurosat', 'clevr_count', 'clevr_dist', 'dmlab', 'kitti',
        'dsprites_loc', 'dsprites_ori', 'smallnorb_azi', 'smallnorb_ele'
    ]
    assert expand_tasks(spec, ['dtd', 'cifar', 'dtd']) == ['cifar', 'dtd']
    with pytest.raises(ValueError, match="unknown VTAB1k task 'cifar100'"):
        expand_tasks(spec, ['cifar100'])


def test_unknown_dataset_type_is_named():
    with pytest.raises(ValueError, match=r"dataset.type='ImageNet'"):
        get_suite('ImageNet')


def test_run_folders_and_options():
    run = grid_run('w', 'dtd', 2.5, 1e-4, 42, 64, ('train800', 'val200'),
                   100)
    assert run.work_dir == 'w/dtd/grid/lr2.5_wd0.0001'
    assert run.name == 'dtd/grid/lr2.5_wd0.0001'
    assert run.lr == pytest.approx(0.625)
    seed_run = final_run('w', 'dtd', 2.5, 1e-4, 800, 64,
                         ('train800val200', 'test'), 100)
    assert seed_run.work_dir == 'w/dtd/final/seed800'

    opts = run_options(0.625, 1e-4, 42, ('train800', 'val200'), 100,
                       has_auto_scale_lr=True, has_test_dataloader=True)
    assert opts == [
        'train_dataloader.dataset.split=train800',
        'val_dataloader.dataset.split=val200',
        'test_dataloader.dataset.split=val200',
        'optim_wrapper.optimizer.lr=0.625',
        'optim_wrapper.optimizer.weight_decay=0.0001',
        'auto_scale_lr.enable=False', 'randomness.seed=42',
        'train_cfg.val_interval=100'
    ]
    assert task_options('task', 'dtd', 47, has_test_dataloader=False) == [
        'train_dataloader.dataset.task=dtd',
        'val_dataloader.dataset.task=dtd', 'model.head.num_classes=47'
    ]


def test_merge_options_later_key_wins():
    assert merge_options(['a.b=1', 'c=2'], ['a.b=3', 'd=4']) == [
        'a.b=3', 'c=2', 'd=4'
    ]
    with pytest.raises(ValueError, match="'oops' is not a key=value"):
        merge_options(['oops'])


def test_train_command_resumes_only_when_asked():
    run = grid_run('w', 'dtd', 1.0, 0.0, 42, 64, ('train800', 'val200'), 10,
                   options=['randomness.seed=42'])
    cmd = train_command('py', 'tools/train.py', 'c.py', run, resume=False,
                        extra_args=['--amp'])
    assert cmd == [
        'py', 'tools/train.py', 'c.py', '--work-dir', 'w/dtd/grid/lr1_wd0',
        '--amp', '--cfg-options', 'randomness.seed=42'
    ]
    cmd = train_command('py', 'tools/train.py', 'c.py', run, resume=True)
    assert cmd[5:7] == ['--resume', 'auto']
