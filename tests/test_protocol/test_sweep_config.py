"""What the sweep reads from configs, and its errors for unusable ones."""
import os.path as osp

import pytest

from vapt_mm.protocol import Sweep
from vapt_mm.protocol.config_reader import method_name, read_sweep_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO_ROOT, 'configs')
VAPT_EUROSAT = osp.join(CONFIGS, 'vapt', 'vit-b16_vtab-eurosat.py')


def make_sweep(config, **kwargs):
    return Sweep(config, '/tmp/unused', train_script='tools/train.py',
                 test_script='tools/test.py', **kwargs)


def test_reads_the_published_vapt_config():
    info = read_sweep_config(VAPT_EUROSAT)
    assert info.task == 'eurosat'
    assert info.batch_size == 64
    assert info.max_epochs == 100
    assert info.method == 'VAPT'
    assert info.has_auto_scale_lr and info.has_test_dataloader
    assert info.suite.grid_splits == ('train800', 'val200')
    # --cfg-options given to the sweep change what it reads
    info = read_sweep_config(VAPT_EUROSAT,
                             ['train_dataloader.batch_size=128'])
    assert info.batch_size == 128


def test_runs_of_the_published_config():
    sweep = make_sweep(VAPT_EUROSAT, base_lrs=[50, 0.05], weight_decays=[0])
    grid = sweep.grid_runs('eurosat')
    assert [r.lr for r in grid] == [12.5, 0.0125]
    assert 'optim_wrapper.optimizer.lr=12.5' in grid[0].cfg_options
    assert 'auto_scale_lr.enable=False' in grid[0].cfg_options
    assert 'train_cfg.val_interval=100' in grid[0].cfg_options
    # not a template: the task is the config's and nothing points elsewhere
    assert not any('dataset.task' in o for o in grid[0].cfg_options)
    seeds = sweep.final_runs('eurosat', (0.05, 0.0))
    assert [r.seed for r in seeds] == [42, 44, 82, 100, 800]
    assert all('val_dataloader.dataset.split=test' in r.cfg_options
               for r in seeds)


def test_template_sets_task_and_class_count():
    sweep = make_sweep(VAPT_EUROSAT, tasks=['sun397'], base_lrs=[1],
                       weight_decays=[0])
    opts = sweep.grid_runs('sun397')[0].cfg_options
    assert 'model.head.num_classes=397' in opts
    assert 'train_dataloader.dataset.task=sun397' in opts
    assert 'test_dataloader.dataset.task=sun397' in opts


def test_user_options_reach_every_run_but_not_the_controlled_keys():
    sweep = make_sweep(
        VAPT_EUROSAT,
        base_lrs=[1],
        weight_decays=[0],
        cfg_options=['model.backbone.init_cfg.checkpoint=/w/vit.pth',
                     'optim_wrapper.optimizer.lr=123'])
    opts = sweep.grid_runs('eurosat')[0].cfg_options
    assert 'model.backbone.init_cfg.checkpoint=/w/vit.pth' in opts
    assert 'optim_wrapper.optimizer.lr=0.25' in opts
    assert 'optim_wrapper.optimizer.lr=123' not in opts


@pytest.mark.parametrize('model,name', [
    (dict(type='PromptedClassifier', neck=dict(type='VAPTNeck')), 'VAPT'),
    (dict(type='PromptedClassifier', neck=dict(type='VPTNeck')),
     'VPT-shallow'),
    (dict(type='PromptedClassifier', neck=None), 'Linear'),
    (dict(type='ImageClassifier'), 'ImageClassifier'),
])
def test_method_name(model, name):
    assert method_name(model) == name


def write_config(tmp_path, body):
    path = tmp_path / 'cfg.py'
    path.write_text(body)
    return str(path)


LOADER = ("dict(batch_size=8, dataset=dict(type='VTAB1k', data_root='d', "
          "task='dtd', split='test'))")


def test_missing_fields_are_named(tmp_path):
    cfg = write_config(
        tmp_path, f'train_dataloader = {LOADER}\n'
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=1))\n"
        'train_cfg = dict(max_epochs=2)\n')
    with pytest.raises(KeyError, match=r'`val_dataloader` \(the validation '
                       'data the runs are scored on\)'):
        read_sweep_config(cfg)


def test_iteration_based_configs_are_refused(tmp_path):
    cfg = write_config(
        tmp_path, f'train_dataloader = {LOADER}\nval_dataloader = {LOADER}\n'
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=1))\n"
        'train_cfg = dict(by_epoch=False, max_iters=100)\n')
    with pytest.raises(ValueError, match='epoch-based train_cfg'):
        read_sweep_config(cfg)


def test_other_datasets_are_refused(tmp_path):
    loader = LOADER.replace("'VTAB1k'", "'ImageNet'")
    cfg = write_config(tmp_path, f'train_dataloader = {loader}\n')
    with pytest.raises(ValueError, match=r"supports the dataset types "
                       r"\['FGVC', 'VTAB1k'\].*'ImageNet'"):
        read_sweep_config(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.py does not exist'):
        read_sweep_config(str(tmp_path / 'nope.py'))


def test_unknown_task_names_the_choices():
    with pytest.raises(ValueError, match="unknown VTAB1k task 'flowers'"):
        make_sweep(VAPT_EUROSAT, tasks=['flowers'])


def test_fgvc_config_uses_its_splits(tmp_path):
    bases = [
        osp.join(CONFIGS, '_base_', 'datasets', 'fgvc_bs64.py'),
        osp.join(CONFIGS, '_base_', 'schedules', 'fgvc_sgd-cos-100e.py')
    ]
    info = read_sweep_config(write_config(tmp_path, f'_base_ = {bases!r}\n'))
    assert info.task == 'cub'
    assert info.suite.name == 'fgvc'
    assert info.suite.grid_splits == ('train', 'val')
    assert info.suite.final_splits == ('trainval', 'test')
