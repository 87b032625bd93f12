"""Checks shared by the speed-harness tests (tests/test_benchmark/) and the
tool test (tests/test_tools/test_benchmark.py): the keys of a benchmark
result, its Markdown table and VAPT's trainable-parameter count."""
import pytest
import torch


TINY_WIDTH = 64  # the 'tiny' preset: 64 wide, 2 blocks, 32 px, patch 8
ROW_KEYS = {
    'label', 'params_trained', 'params_total', 'trainable_percent',
    'batch_size', 'infer_batch_size', 'img_size', 'train_step_s',
    'infer_step_s', 'train_img_s', 'infer_img_s', 'train_times_s',
    'infer_times_s', 'train_peak_mib', 'infer_peak_mib', 'train_vs_baseline',
    'infer_vs_baseline', 'source'
}
RESULT_KEYS = {
    'command', 'torch_version', 'device', 'device_name', 'threads',
    'batch_size', 'warmup', 'repeats', 'baseline', 'memory_method', 'rows',
    'table'
}


def vapt_trainable(width, blocks, grid, tokens, num_classes, kernel=2,
                   hidden=8):
    """VAPT's trainable parameters (vpt_depth 1) plus a linear head."""
    conv_grid = (grid - kernel + 1)**2
    static = tokens * width
    per_adaptive = 2 * width + kernel * kernel + conv_grid * tokens + tokens
    return (static + (blocks - 1) * per_adaptive + 2 * hidden * width +
            width * num_classes + num_classes)


def check_table(table, labels):
    lines = table.splitlines()
    assert lines[0].startswith('| method | params trained | train img/s')
    assert [line.split('|')[1].strip() for line in lines[2:]] == labels


def check_result(result, labels, repeats, batch_size):
    assert RESULT_KEYS <= set(result)
    assert result['torch_version'] == torch.__version__
    assert result['device'] == 'cpu'
    assert [row['label'] for row in result['rows']] == labels
    check_table(result['table'], labels)
    for row in result['rows']:
        assert ROW_KEYS <= set(row), row['label']
        assert len(row['train_times_s']) == repeats
        assert len(row['infer_times_s']) == repeats
        assert row['train_img_s'] == pytest.approx(batch_size /
                                                   row['train_step_s'])
        assert row['train_peak_mib'] > 0 and row['infer_peak_mib'] > 0
    baseline = result['rows'][labels.index(result['baseline'])]
    assert baseline['train_vs_baseline'] == 1.0
    assert baseline['infer_vs_baseline'] == 1.0
