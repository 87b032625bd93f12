"""tools/train.py on a method config without the dataset on disk."""
import os

from test_train_helpers import CONFIGS_DIR, run_tool


def test_missing_data_root_fails_before_training(tmp_path):
    config = os.path.join(CONFIGS_DIR, 'vapt', 'vit-b16_vtab-eurosat.py')
    # the config's data_root 'data/vtab-1k' is relative to the working dir
    proc = run_tool('train.py', [config], cwd=str(tmp_path))
    assert proc.returncode != 0
    assert ("VTAB-1k data root 'data/vtab-1k' does not exist"
            in proc.stderr)
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    work_dir = tmp_path / 'work_dirs' / 'vit-b16_vtab-eurosat'
    assert not list(work_dir.glob('*.pth'))
