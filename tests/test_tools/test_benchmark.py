"""tools/analysis/benchmark.py: the command line on a tiny backbone.

Speed is judged by the tool, not here: no test asserts a timing. The unit
tests of vapt_mm.benchmark are in tests/test_benchmark/.
"""
import json
import os
import os.path as osp
import subprocess
import sys

from benchmark_result_checks import TINY_WIDTH, check_result, vapt_trainable

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO_ROOT, 'tools', 'analysis', 'benchmark.py')


def test_cli_named_methods_on_tiny_backbone(tmp_path):
    out = tmp_path / 'bench.json'
    args = [
        '--methods', 'linear', 'vapt:4', '--backbone', 'tiny', '--warmup',
        '1', '--repeats', '2', '--batch-size', '2', '--threads', '1',
        '--out',
        str(out)
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, TOOL, *args],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    result = json.loads(out.read_text())
    # the bare row is added in front, as the default baseline
    labels = ['bare', 'linear', 'vapt:4']
    check_result(result, labels, repeats=2, batch_size=2)
    assert result['threads'] == 1
    assert 'tools/analysis/benchmark.py --methods linear vapt:4' in \
        result['command']
    assert result['table'] in proc.stdout
    rows = {row['label']: row for row in result['rows']}
    assert rows['bare']['params_trained'] == 0
    assert rows['linear']['params_trained'] == TINY_WIDTH * 10 + 10
    assert rows['vapt:4']['params_trained'] == vapt_trainable(
        TINY_WIDTH, 2, 4, 4, 10)
    assert rows['vapt:4']['img_size'] == [32, 32]
