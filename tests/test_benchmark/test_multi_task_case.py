"""The multi-task case of the speed benchmark, on a tiny ViT."""
import json
import os.path as osp
import runpy

import pytest

from vapt_mm.benchmark.multi_task_case import (build_task_models,
                                                     mixed_tasks,
                                                     run_multi_task_benchmark)

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'analysis',
                'benchmark.py')


def test_task_models_share_one_frozen_backbone():
    models = build_task_models(['vpt-shallow:1', 'vapt:3'], 3, 'tiny',
                               num_classes=4, fast_path='off')
    backbones = {id(m.backbone) for m in models.values()}
    assert len(backbones) == 1
    assert [m.benchmark_method for m in models.values()] == [
        'vpt-shallow:1:plain', 'vapt:3:plain', 'vpt-shallow:1:plain']
    assert all(m.neck.fast_path is False for m in models.values())
    assert all(not m.training for m in models.values())
    with pytest.raises(ValueError, match='needs prompted methods'):
        build_task_models(['linear'], 2, 'tiny')
    with pytest.raises(ValueError, match='not both'):
        build_task_models(['vapt:2'], 2, 'tiny', fast_path='both')


def test_memory_grows_by_the_tasks_only():
    result = run_multi_task_benchmark(
        ['vpt-deep:2', 'vapt:3'], num_tasks=2, batch_size=4,
        task_counts=(1, 2, 3), backbone='tiny', num_classes=5, repeats=1)
    assert [row['label'] for row in result['speed_rows']] == [
        'mixed', 'single vpt-deep:2', 'single vapt:3', 'sequential']
    models = build_task_models(['vpt-deep:2', 'vapt:3'], 3, 'tiny',
                               num_classes=5)
    task_bytes = [
        sum(p.numel() * 4 for part in (m.neck, m.head)
            for p in part.parameters()) for m in models.values()
    ]
    backbone_bytes = sum(p.numel() * 4
                         for p in models['task00'].backbone.parameters())
    mib = 2.0**20
    for count, row in zip((1, 2, 3), result['memory_rows']):
        assert row['num_tasks'] == count
        assert row['backbone_param_mib'] == pytest.approx(
            backbone_bytes / mib)
        assert row['task_param_mib'] == pytest.approx(
            sum(task_bytes[:count]) / mib)
        assert row['param_mib'] == pytest.approx(
            (backbone_bytes + sum(task_bytes[:count])) / mib)
        assert row['infer_peak_mib'] > 0
    assert set(result['budgets']) == {
        'mixed_vs_single_budget', 'mixed_vs_single_max', 'mixed_vs_sequential',
        'met', 'mixed_vs_single_max_cpu', 'mixed_vs_sequential_cpu', 'met_cpu'
    }
    for row in result['speed_rows']:
        assert len(row['times_s']) == len(row['cpu_times_s']) == 1
        assert row['cpu_s'] > 0 and row['step_s'] > 0
    assert '| tasks T | params MiB' in result['table']


def test_mixed_tasks_cycle():
    assert mixed_tasks(['a', 'b'], 5) == ['a', 'b', 'a', 'b', 'a']


def test_command_line_flag(tmp_path):
    out = tmp_path / 'multi.json'
    main = runpy.run_path(TOOL)['main']
    result = main([
        '--multi-task', '2', '--methods', 'vpt-shallow:1', 'vpt-deep:3',
        '--backbone', 'tiny', '--batch-size', '4', '--repeats', '1',
        '--task-counts', '1', '2', '--no-memory', '--out', str(out)
    ])
    written = json.loads(out.read_text())
    assert written['num_tasks'] == 2 and written['batch_size'] == 4
    assert [row['num_tasks'] for row in written['memory_rows']] == [1, 2]
    assert written['memory_rows'][0]['infer_peak_mib'] is None
    assert written['speed_rows'] == result['speed_rows']
