"""tools/train.py: how the command line is merged into the config."""
import os.path as osp

import pytest
from mmengine.config import Config
from test_train_helpers import CONFIGS_DIR, load_tool

from vapt_mm.engine.dist_cpu import is_cpu_only

VAPT_EUROSAT = osp.join(CONFIGS_DIR, 'vapt', 'vit-b16_vtab-eurosat.py')


train = load_tool('train.py', 'vapt_mm_tools_train')


def _merged(*argv, config=VAPT_EUROSAT):
    args = train.parse_args([config, *argv])
    return train.merge_args(Config.fromfile(config), args)


def test_defaults_follow_mmpretrain():
    cfg = _merged()
    assert cfg.work_dir == osp.join('./work_dirs', 'vit-b16_vtab-eurosat')
    assert cfg.launcher == 'none'
    assert cfg.resume is False
    assert cfg.val_dataloader is not None


def test_resume_work_dir_and_validation_flags():
    cfg = _merged('--resume', '--work-dir', 'somewhere', '--no-validate')
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir == 'somewhere'
    assert cfg.val_dataloader is None and cfg.val_cfg is None
    assert cfg.val_evaluator is None
    cfg = _merged('--resume', 'work_dirs/x/epoch_3.pth')
    assert cfg.resume is True
    assert cfg.load_from == 'work_dirs/x/epoch_3.pth'


LOADERS = """
dataset = dict(type='VTAB1k', data_root='data/vtab-1k', task='dtd')
train_dataloader = dict(batch_size=2, num_workers=2, dataset=dataset)
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=True,
                      dataset=dataset)
test_dataloader = dict(batch_size=2, num_workers=4, persistent_workers=True,
                       pin_memory=True, dataset=dataset)
"""


def _loaders(cfg):
    return [cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader]


def test_dataloader_defaults(tmp_path):
    config = tmp_path / 'loaders.py'
    config.write_text(LOADERS)
    cfg = _merged(config=str(config))
    train_loader, val_loader, test_loader = (cfg.train_dataloader,
                                             cfg.val_dataloader,
                                             cfg.test_dataloader)
    assert train_loader.collate_fn == dict(type='default_collate')
    # workers: persistent by default, as in mmpretrain
    assert train_loader.persistent_workers is True
    # no workers: persistent_workers=True would make torch fail; turned off
    assert val_loader.persistent_workers is False
    assert test_loader.persistent_workers is True
    # pinned memory only where there is an accelerator to copy to
    assert all(loader.pin_memory == (not is_cpu_only())
               for loader in _loaders(cfg))

    # --cfg-options is merged before the defaults are filled in, so it can
    # take the workers away too
    cfg = _merged('--cfg-options', 'test_dataloader.num_workers=0',
                  config=str(config))
    assert cfg.test_dataloader.persistent_workers is False
    cfg = _merged('--no-persistent-workers', config=str(config))
    assert not any(
        loader.persistent_workers for loader in _loaders(cfg))


def test_auto_scale_lr_needs_the_config_section(tmp_path):
    assert _merged('--auto-scale-lr').auto_scale_lr.enable is True
    bare = tmp_path / 'bare.py'
    bare.write_text("optim_wrapper = dict(optimizer=dict(type='SGD', "
                    'lr=0.1))\n')
    with pytest.raises(KeyError, match='auto_scale_lr.*bare.py'):
        _merged('--auto-scale-lr', config=str(bare))


@pytest.mark.skipif(not is_cpu_only(), reason='checks the CPU wrapper')
def test_amp_uses_the_cpu_wrapper():
    cfg = _merged('--amp')
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.optimizer.lr == 1.0
    with pytest.raises(ValueError, match='bfloat16 only'):
        _merged('--amp', '--amp-dtype', 'float16')
    # the dtype may also come from the config
    with pytest.raises(ValueError, match='bfloat16 only'):
        _merged('--amp', '--cfg-options', 'optim_wrapper.dtype=float16')
