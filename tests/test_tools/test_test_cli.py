"""tools/test.py: how the command line is merged into the config."""
import os.path as osp

import pytest
from mmengine.config import Config
from test_train_helpers import CONFIGS_DIR, load_tool

from vapt_mm.engine.dist_cpu import is_cpu_only

VPT_DEEP = osp.join(CONFIGS_DIR, 'vpt', 'vit-b16-deep_vtab-eurosat.py')

test_tool = load_tool('test.py', 'vapt_mm_tools_test')


def test_checkpoint_and_options_are_merged(tmp_path):
    ckpt = tmp_path / 'epoch_100.pth'
    ckpt.write_bytes(b'')
    args = test_tool.parse_args([
        VPT_DEEP, str(ckpt), '--cfg-options', 'test_dataloader.num_workers=0'
    ])
    cfg = test_tool.merge_args(Config.fromfile(VPT_DEEP), args)
    assert cfg.load_from == str(ckpt)
    assert cfg.work_dir == osp.join('./work_dirs',
                                    'vit-b16-deep_vtab-eurosat')
    assert cfg.test_dataloader.num_workers == 0
    assert cfg.test_dataloader.persistent_workers is False
    assert cfg.test_dataloader.pin_memory is (not is_cpu_only())


def test_missing_checkpoint_is_named(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    args = test_tool.parse_args([VPT_DEEP, missing])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        test_tool.merge_args(Config.fromfile(VPT_DEEP), args)


def test_out_item_needs_out(capsys):
    with pytest.raises(SystemExit):
        test_tool.parse_args([VPT_DEEP, 'x.pth', '--out-item', 'metrics'])
    assert '--out-item needs --out' in capsys.readouterr().err


def test_out_suffix_is_checked_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        test_tool.parse_args([VPT_DEEP, 'x.pth', '--out', 'preds.json'])
    assert '--out preds.json: the pred file must end with one of .pkl' in (
        capsys.readouterr().err)
    args = test_tool.parse_args(
        [VPT_DEEP, 'x.pth', '--out', 'm.json', '--out-item', 'metrics'])
    assert args.out == 'm.json'
