"""tools/dataset_converters/check_dataset.py: output and exit codes."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

from vapt_mm.datasets import make_toy_fgvc, make_toy_vtab1k

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'check_dataset.py')
PYTHON = '/work/venv/bin/python' if osp.exists(
    '/work/venv/bin/python') else sys.executable


def load_tool():
    spec = importlib.util.spec_from_file_location('check_dataset', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(*args):
    return subprocess.run([PYTHON, TOOL, *args],
                          capture_output=True,
                          text=True,
                          cwd=REPO_ROOT,
                          timeout=300)


@pytest.fixture
def vtab_root(tmp_path):
    """Two tasks with the real train split sizes and 20 test images."""
    return make_toy_vtab1k(str(tmp_path / 'vtab-1k'),
                           tasks=['eurosat', 'kitti'])


def test_cli_subprocess_exits_1_on_a_problem(vtab_root):
    os.remove(osp.join(vtab_root, 'kitti', 'images', 'test', '00004.png'))
    result = run_cli(vtab_root, '--tasks', 'eurosat', 'kitti')
    assert result.returncode == 1, result.stdout + result.stderr
    assert '1 of 20 images listed in' in result.stdout
    assert osp.join(vtab_root, 'kitti', 'images', 'test', '00004.png') in \
        result.stdout
    assert 'found     19 / listed 20' in result.stdout
    assert result.stdout.splitlines()[-1].endswith(
        '8 split(s) checked, 1 with problems, 1 problem(s) in total: '
        'FAILED (see docs/datasets.md)')


def check(tool, capsys, *args):
    code = tool.main(list(args))
    return code, capsys.readouterr().out


def test_clean_data_exits_0(vtab_root, capsys):
    code, out = check(load_tool(), capsys, vtab_root, '--tasks', 'eurosat',
                      'kitti')
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-1].endswith('8 split(s) checked, 0 with problems, '
                              '0 problem(s) in total: OK')
    assert sum('found    800 / expected 800' in line for line in lines) == 2
    assert sum('found    200 / expected 200' in line for line in lines) == 2
    assert sum('found   1000 / expected 1000' in line for line in lines) == 2
    assert sum('found     20 / listed 20' in line for line in lines) == 2


def test_missing_image(vtab_root, capsys):
    tool = load_tool()
    image = osp.join(vtab_root, 'eurosat', 'images', 'val200', '00007.png')
    os.remove(image)
    code, out = check(tool, capsys, vtab_root, '--tasks', 'eurosat')
    assert code == 1
    # val200 and train800val200 both list it
    assert out.count("images listed in '") == 2
    assert "1 of 200 images listed in '" in out
    assert "1 of 1000 images listed in '" in out
    assert repr(image) in out
    assert 'found    199 / expected 200' in out


def test_unreadable_image(vtab_root, capsys):
    tool = load_tool()
    image = osp.join(vtab_root, 'eurosat', 'images', 'train800', '00011.png')
    with open(image, 'wb') as f:
        f.write(b'\x00\x13garbage bytes, not an image' * 3)
    code, out = check(tool, capsys, vtab_root, '--tasks', 'eurosat',
                      '--splits', 'train800')
    assert code == 1
    assert '1 of 800 images listed in' in out
    assert 'cannot be read as images' in out
    assert repr(image) in out and 'UnidentifiedImageError' in out
    # existence-only mode does not open images
    code, _ = check(tool, capsys, vtab_root, '--tasks', 'eurosat', '--splits',
                    'train800', '--no-verify')
    assert code == 0


def test_label_out_of_range(vtab_root, capsys):
    tool = load_tool()
    ann = osp.join(vtab_root, 'kitti', 'test.txt')
    with open(ann) as f:
        lines = f.read().splitlines()
    lines[2] = lines[2].rsplit(maxsplit=1)[0] + ' 4'  # kitti has 4 classes
    with open(ann, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    code, out = check(tool, capsys, vtab_root, '--tasks', 'kitti')
    assert code == 1
    assert f'{ann}, line 3: label 4 is outside [0, 4) (num_classes=4' in out
    assert '1 problem(s) in total' in out


def test_short_split(vtab_root, capsys):
    tool = load_tool()
    ann = osp.join(vtab_root, 'eurosat', 'train800.txt')
    with open(ann) as f:
        lines = f.read().splitlines()
    with open(ann, 'w') as f:
        f.write('\n'.join(lines[:790]) + '\n')
    code, out = check(tool, capsys, vtab_root, '--tasks', 'eurosat')
    assert code == 1
    assert f"'{ann}' lists 790 images; expected 800 for split 'train800'" \
        in out
    assert 'found    790 / expected 800' in out


def test_missing_annotation_file_and_root(vtab_root, tmp_path, capsys):
    tool = load_tool()
    os.remove(osp.join(vtab_root, 'eurosat', 'test.txt'))
    code, out = check(tool, capsys, vtab_root, '--tasks', 'eurosat')
    assert code == 1
    assert 'eurosat/test.txt' in out and 'is missing' in out
    code, out = check(tool, capsys, str(tmp_path / 'nowhere'))
    assert code == 1
    assert 'does not exist' in out


def test_bad_task_name_exits_2(vtab_root, capsys):
    tool = load_tool()
    assert tool.main([vtab_root, '--tasks', 'cifar100']) == 2
    assert "Unknown VTAB-1k task 'cifar100'" in capsys.readouterr().err


def test_fgvc_benchmark(tmp_path, capsys):
    tool = load_tool()
    root = make_toy_fgvc(str(tmp_path / 'fgvc'), datasets=['oxfordflower'])
    code, out = check(tool, capsys, root, '--benchmark', 'fgvc', '--tasks',
                      'oxfordflower')
    assert code == 0, out
    assert out.count('found    102 / listed 102') == 3
    os.remove(osp.join(root, 'OxfordFlower', 'class_010', 'val_00.jpg'))
    code, out = check(tool, capsys, root, '--benchmark', 'fgvc', '--tasks',
                      'oxfordflower')
    assert code == 1
    assert '1 of 102 images listed in' in out and 'val.json' in out
