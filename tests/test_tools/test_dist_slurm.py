"""tools/slurm_train.sh and tools/slurm_test.sh on CPU, with a stand-in
``srun`` that starts one task with the variables SLURM would set."""
import os
import os.path as osp
import stat
import sys

import pytest
from test_train_helpers import (TOOLS_DIR, assert_ok, free_port,
                                read_json_logs, run, write_tiny_config,
                                write_tiny_pretrained, write_tiny_vtab1k)

from vapt_mm.engine.dist_cpu import is_cpu_only

FAKE_SRUN = '''#!/usr/bin/env bash
# Record the arguments, drop srun's own options, run the command as task 0
# of 1 the way SLURM would.
echo "$@" >> "$SRUN_LOG"
while [ $# -gt 0 ]; do
    case "$1" in
        -p) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
export SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=node0
exec "$@"
'''


@pytest.mark.skipif(not is_cpu_only(), reason='tests the gloo on CPU path')
def test_slurm_scripts_run_on_cpu(tmp_path):
    data_root = str(tmp_path / 'vtab-1k')
    write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(tmp_path / 'vit.pth'))
    config = write_tiny_config(
        str(tmp_path / 'tiny.py'), data_root, pretrained, neck='vpt-shallow',
        max_epochs=1)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN)
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    srun_log = str(tmp_path / 'srun_args.txt')
    env = dict(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        SRUN_LOG=srun_log,
        CPU_ONLY='1',
        GPUS='1',
        GPUS_PER_NODE='1',
        CPUS_PER_TASK='1',
        PYTHON=sys.executable,
        # no scontrol here: the master address is given, as users may
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(free_port()))
    work_dir = str(tmp_path / 'work')

    proc = run([
        'bash',
        osp.join(TOOLS_DIR, 'slurm_train.sh'), 'cpu-part', 'vapt-job', config,
        work_dir
    ],
               cwd=str(tmp_path),
               env=env)
    assert_ok(proc)
    assert ("rank 0 of 1 (launcher 'slurm')" in proc.stdout + proc.stderr)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    with open(srun_log) as f:
        train_args = f.readline().split()
    assert train_args[:2] == ['-p', 'cpu-part']
    assert '--job-name=vapt-job' in train_args
    assert '--ntasks=1' in train_args and '--cpus-per-task=1' in train_args
    assert not any(a.startswith('--gres') for a in train_args)  # CPU_ONLY
    assert train_args[-2:] == ['--work-dir=' + work_dir, '--launcher=slurm']

    test_dir = str(tmp_path / 'test_work')
    proc = run([
        'bash',
        osp.join(TOOLS_DIR, 'slurm_test.sh'), 'cpu-part', 'vapt-test', config,
        osp.join(work_dir, 'epoch_1.pth'), '--work-dir', test_dir
    ],
               cwd=str(tmp_path),
               env=env)
    assert_ok(proc)
    reported = [r for r in read_json_logs(test_dir) if 'accuracy/top1' in r]
    assert len(reported) == 1
