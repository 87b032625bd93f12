"""tools/train.py --amp on CPU: bf16 autocast through CPUAmpOptimWrapper."""
import math
import os.path as osp

import pytest
from test_train_helpers import (assert_ok, load_state_dict, read_json_logs,
                                run_tool, trainable_keys, write_tiny_config,
                                write_tiny_pretrained, write_tiny_vtab1k)

from vapt_mm.engine.dist_cpu import is_cpu_only


@pytest.mark.skipif(not is_cpu_only(), reason='tests the CPU AMP path')
def test_amp_on_cpu_trains_and_saves(tmp_path):
    data_root = str(tmp_path / 'vtab-1k')
    write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(tmp_path / 'vit.pth'))
    config = write_tiny_config(
        str(tmp_path / 'tiny.py'), data_root, pretrained, neck='vapt',
        max_epochs=1)
    work_dir = str(tmp_path / 'work')
    proc = run_tool('train.py', [config, '--work-dir', work_dir, '--amp'],
                    cwd=str(tmp_path))
    assert_ok(proc)
    # the config dumped into the work dir records the wrapper that ran
    dumped = (tmp_path / 'work' / 'tiny.py').read_text()
    assert "type='CPUAmpOptimWrapper'" in dumped
    assert "dtype='bfloat16'" in dumped

    losses = [r['loss'] for r in read_json_logs(work_dir) if 'loss' in r]
    assert len(losses) == 2
    assert all(math.isfinite(loss) for loss in losses)
    state = load_state_dict(osp.join(work_dir, 'epoch_1.pth'))
    assert trainable_keys(state)
    assert all(v.isfinite().all() for v in state.values())
