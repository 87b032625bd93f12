"""Every tool accepts --debug and prints user errors without a traceback.

The tools run in this process (runpy, as ``python tools/x.py``) so the
check stays fast; tests/test_tools/test_train_preflight.py runs train.py
and test.py as real processes.
"""
import glob
import os.path as osp
import runpy
import sys

import pytest
from test_train_helpers import CONFIGS_DIR, TOOLS_DIR

TOOLS = sorted(
    osp.relpath(p, TOOLS_DIR)
    for p in glob.glob(osp.join(TOOLS_DIR, '**', '*.py'), recursive=True))


def run_main(monkeypatch, tool, argv):
    """``python tools/<tool> argv...``; returns the exit code."""
    monkeypatch.setenv('LOCAL_RANK', '0')  # train/test.py set it
    monkeypatch.delenv('VAPT_MM_DEBUG', raising=False)
    path = osp.join(TOOLS_DIR, tool)
    monkeypatch.setattr(sys, 'argv', [path, *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(path, run_name='__main__')
    return exit_info.value.code


def test_the_tools_are_all_listed():
    assert len(TOOLS) >= 13, TOOLS
    assert 'train.py' in TOOLS
    assert 'model_converters/vit_npz_to_mmpretrain.py' in TOOLS


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_accepts_debug(monkeypatch, capsys, tool):
    assert run_main(monkeypatch, tool, ['--help']) == 0
    help_text = ' '.join(capsys.readouterr().out.split())
    assert '--debug' in help_text
    assert 'VAPT_MM_DEBUG=1' in help_text


def user_error_cases(tmp):
    config = osp.join(CONFIGS_DIR, 'vapt', 'vit-b16_vtab-eurosat.py')
    absent = osp.join(tmp, 'absent.pth')
    return {
        'train.py': (['nope.py'], "The config file 'nope.py' does not exist",
                     'docs/errors.md#config-file'),
        'test.py': ([config, absent],
                    f'Checkpoint file {absent} does not exist',
                    'docs/errors.md#checkpoint-missing'),
        'sweep.py': (['nope.py', '--work-dir', tmp],
                     'Config file nope.py does not exist', None),
        'analysis/results_table.py': ([osp.join(tmp, 'nowhere'), '--out-dir',
                                       tmp], 'is not a directory', None),
        'serve.py': ([config, osp.join(tmp, 'absent.safetensors')],
                     f"Prompt file {osp.join(tmp, 'absent.safetensors')} "
                     'does not exist', 'docs/serving.md#the-server'),
        'analysis/benchmark.py': (['--device', 'abacus'],
                                  "Unknown benchmark device 'abacus'", None),
        'model_converters/timm_vit_to_mmpretrain.py':
        ([absent, osp.join(tmp, 'out.pth')],
         f"Checkpoint file '{absent}' does not exist", None),
    }


CASES = sorted(user_error_cases('tmp'))  # the tool names


@pytest.mark.parametrize('tool', CASES)
def test_user_errors_print_a_short_message(monkeypatch, capsys, tmp_path,
                                           tool):
    argv, message, docs = user_error_cases(str(tmp_path))[tool]
    assert run_main(monkeypatch, tool, argv) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert f'{osp.basename(tool)}: error: ' in err
    assert message in err
    if docs:
        assert docs in err
    assert '(a traceback is shown with --debug or VAPT_MM_DEBUG=1)' in err

    assert run_main(monkeypatch, tool, [*argv, '--debug']) == 1
    err = capsys.readouterr().err
    assert 'Traceback (most recent call last)' in err
    assert message in err
