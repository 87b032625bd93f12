"""tools/analysis/benchmark.py and vapt_mm.utils.benchmark.

Speed is judged by the tool, not here: no test asserts a timing. The tests
check which rows are built, what they train, the bookkeeping of the report
(medians, ratios, JSON keys) and that the bare row back-propagates to the
input images.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmpretrain.registry import MODELS

from vapt_mm.utils.benchmark import (BACKBONE_PRESETS, build_bare_case,
                                     build_config_cases, build_method_cases,
                                     format_markdown_table,
                                     measure_peak_memory, method_model_cfg,
                                     parse_methods, run_benchmark,
                                     summarize_rows)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO_ROOT, 'tools', 'analysis', 'benchmark.py')

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

# A backbone unlike the 'tiny' preset (width, depth, image size), so a test
# can tell which backbone a row was built from.
CONFIG_BACKBONE = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
    img_size=24,
    patch_size=8)


def _vapt_trainable(width, blocks, grid, tokens, num_classes, kernel=2,
                    hidden=8):
    """VAPT_SPEC.md's count (vpt_depth 1) plus a linear head."""
    conv_grid = (grid - kernel + 1)**2
    static = tokens * width
    per_adaptive = 2 * width + kernel * kernel + conv_grid * tokens + tokens
    return (static + (blocks - 1) * per_adaptive + 2 * hidden * width +
            width * num_classes + num_classes)


def _check_table(table, labels):
    lines = table.splitlines()
    assert lines[0].startswith('| method | params trained | train img/s')
    assert [line.split('|')[1].strip() for line in lines[2:]] == labels


def _check_result(result, labels, repeats, batch_size):
    assert RESULT_KEYS <= set(result)
    assert result['torch_version'] == torch.__version__
    assert result['device'] == 'cpu'
    assert [row['label'] for row in result['rows']] == labels
    _check_table(result['table'], labels)
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
    _check_result(result, labels, repeats=2, batch_size=2)
    assert result['threads'] == 1
    assert 'tools/analysis/benchmark.py --methods linear vapt:4' in \
        result['command']
    assert result['table'] in proc.stdout
    rows = {row['label']: row for row in result['rows']}
    assert rows['bare']['params_trained'] == 0
    assert rows['linear']['params_trained'] == TINY_WIDTH * 10 + 10
    assert rows['vapt:4']['params_trained'] == _vapt_trainable(
        TINY_WIDTH, 2, 4, 4, 10)
    assert rows['vapt:4']['img_size'] == [32, 32]


def test_run_benchmark_from_config_file(tmp_path):
    config = tmp_path / 'tiny_vpt-deep.py'
    config.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['vapt_mm'], "
        'allow_failed_imports=False)\n'
        f'model = dict(type=\'PromptedClassifier\', '
        f'backbone={CONFIG_BACKBONE!r}, '
        "neck=dict(type='VPTNeck', num_tokens=3, deep=True), "
        "head=dict(type='LinearClsHead', num_classes=5, in_channels=32))\n")
    out = tmp_path / 'result' / 'bench.json'
    result = run_benchmark(
        configs=[str(config)],
        warmup=1,
        repeats=2,
        batch_size=2,
        infer_batch_size=3,
        threads=1,
        out=str(out),
        command='benchmark test')

    labels = ['bare', 'tiny_vpt-deep']
    _check_result(result, labels, repeats=2, batch_size=2)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result['command'] == 'benchmark test'
    bare, prompted = result['rows']
    # both rows run the config's backbone at its image size
    backbone = MODELS.build(CONFIG_BACKBONE)
    assert bare['params_total'] == sum(
        p.numel() for p in backbone.parameters())
    assert bare['img_size'] == prompted['img_size'] == [24, 24]
    assert prompted['params_trained'] == 3 * 3 * 32 + 32 * 5 + 5
    assert prompted['infer_batch_size'] == 3
    assert prompted['config'] == str(config)


def test_bare_row_backpropagates_to_the_input():
    case = build_bare_case(BACKBONE_PRESETS['tiny'], batch_size=2)
    backbone = case.model.backbone
    backward_calls = []
    for index, layer in enumerate(backbone.layers):
        layer.register_full_backward_hook(
            lambda module, grad_in, grad_out, index=index: backward_calls.
            append(index))
    assert case.train_inputs.grad is None
    case.train_step()

    # the backward pass ran through every block, last to first
    assert backward_calls == [1, 0]
    grad = case.train_inputs.grad
    assert grad is not None and grad.shape == (2, 3, 32, 32)
    assert grad.abs().sum() > 0
    # reference: the backbone's own forward, differentiated by autograd,
    # with the same fixed weighting of the outputs
    inputs = case.train_inputs.detach().clone().requires_grad_(True)
    outputs = backbone(inputs)
    assert len(outputs) == len(case.output_weights) == 1
    loss = (outputs[0] * case.output_weights[0]).sum()
    expected, = torch.autograd.grad(loss, inputs)
    torch.testing.assert_close(grad, expected)
    # the backbone is frozen: the step computes no weight gradient
    assert all(p.grad is None for p in backbone.parameters())
    assert case.optimizer is None


def test_summary_medians_ratios_and_table():
    cases = build_method_cases(
        parse_methods(['bare', 'linear']), 'tiny', batch_size=4)
    times = {
        'bare': dict(train=[0.3, 0.1, 0.2], infer=[0.1, 0.1, 0.1]),
        'linear': dict(train=[0.1, 0.1, 0.5], infer=[0.4, 0.2, 0.2]),
    }
    memory = {
        'bare': dict(train=3 * 2**20, infer=2**20),
        'linear': dict(train=2**19, infer=2**20)
    }
    rows = summarize_rows(cases, times, memory, baseline='linear')

    bare, linear = rows
    assert bare['train_step_s'] == 0.2 and linear['infer_step_s'] == 0.2
    assert bare['train_img_s'] == pytest.approx(20.0)
    assert bare['train_vs_baseline'] == pytest.approx(2.0)
    assert bare['infer_vs_baseline'] == pytest.approx(0.5)
    assert linear['train_vs_baseline'] == 1.0
    assert bare['train_peak_mib'] == 3.0 and linear['train_peak_mib'] == 0.5
    table = format_markdown_table(rows, 'linear')
    assert 'train step / linear' in table.splitlines()[0]
    assert table.splitlines()[2] == (
        '| bare | 0 (grad to input) | 20.0 | 40.0 | 3.0 | 1.0 | 2.00x | '
        '0.50x |')
    assert table.splitlines()[3].startswith('| linear | 650 (0.80%) | 40.0')

    with pytest.raises(ValueError, match=r"Baseline row 'vapt:4' is not "
                       r"among the benchmark rows \['bare', 'linear'\]"):
        summarize_rows(cases, times, memory, baseline='vapt:4')


def test_method_names_and_model_configs():
    specs = parse_methods(
        ['bare', 'full', 'vpt-shallow:10', 'vpt-deep:100:plain', 'vapt:10'],
        fast_path_mode='both')
    assert [s.label for s in specs] == [
        'bare', 'full', 'vpt-shallow:10:fast', 'vpt-shallow:10:plain',
        'vpt-deep:100:plain', 'vapt:10:fast', 'vapt:10:plain'
    ]
    backbone = BACKBONE_PRESETS['vit-b16']
    cfgs = [method_model_cfg(s, backbone, 768, 10) for s in specs]
    assert 'head' not in cfgs[0] and 'neck' not in cfgs[0]
    assert cfgs[1]['freeze_backbone'] is False and 'neck' not in cfgs[1]
    assert cfgs[3]['neck'] == dict(
        type='VPTNeck', num_tokens=10, fast_path=False)
    assert cfgs[4]['neck'] == dict(
        type='VPTNeck', num_tokens=100, deep=True, fast_path=False)
    assert cfgs[5]['neck'] == dict(
        type='VAPTNeck', num_tokens=10, fast_path=True)
    assert cfgs[5]['head']['in_channels'] == 768
    # without a mode or suffix the neck keeps its own default
    plain, = parse_methods(['vapt:10'])
    assert 'fast_path' not in method_model_cfg(plain, backbone, 768, 10)[
        'neck']
    auto, = parse_methods(['vapt:10'], fast_path_mode='auto')
    assert method_model_cfg(auto, backbone, 768, 10)['neck'][
        'fast_path'] is None

    with pytest.raises(ValueError, match=r"Unknown benchmark method 'vapt'"
                       r'.*vapt:<p>'):
        parse_methods(['vapt'])
    with pytest.raises(ValueError, match="unknown suffix 'turbo'"):
        parse_methods(['vpt-deep:10:turbo'])
    with pytest.raises(ValueError, match='more than once'):
        parse_methods(['vapt:10', 'vapt:10'])
    with pytest.raises(ValueError, match="Unknown fast-path mode 'fastest'"):
        parse_methods(['vapt:10'], fast_path_mode='fastest')


def test_config_fast_path_rows(tmp_path):
    config = tmp_path / 'tiny_vapt.py'
    config.write_text(
        "custom_imports = dict(imports=['vapt_mm'])\n"
        'model = dict(type=\'PromptedClassifier\', '
        f'backbone={BACKBONE_PRESETS["tiny"]!r}, '
        "neck=dict(type='VAPTNeck', num_tokens=2), "
        "head=dict(type='LinearClsHead', num_classes=3, in_channels=64))\n")
    cases, backbone = build_config_cases([str(config)],
                                         fast_path_mode='both',
                                         batch_size=2)
    assert [c.label for c in cases] == ['tiny_vapt:fast', 'tiny_vapt:plain']
    assert [c.model.neck.fast_path for c in cases] == [True, False]
    assert backbone == BACKBONE_PRESETS['tiny']


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match='config files or named methods'):
        run_benchmark(methods=['vapt:4'], configs=['a.py'])
    with pytest.raises(FileNotFoundError, match='missing.py'):
        run_benchmark(configs=[str(tmp_path / 'missing.py')], batch_size=2)
    with pytest.raises(ValueError, match="Baseline row 'vpt-deep:4'"):
        run_benchmark(['vapt:4'],
                      backbone='tiny',
                      batch_size=2,
                      baseline='vpt-deep:4')


def test_cpu_peak_memory_counts_live_tensor_bytes():

    def two_live():
        first = torch.empty(1000, dtype=torch.float32)  # 4,000 bytes
        second = torch.empty(500, dtype=torch.float64)  # 4,000 bytes
        del first, second

    def one_at_a_time():
        first = torch.empty(1000, dtype=torch.float32)  # 4,000 bytes
        del first
        second = torch.empty(300, dtype=torch.float32)  # 1,200 bytes
        del second

    assert measure_peak_memory(two_live, 'cpu') == 8000
    assert measure_peak_memory(one_at_a_time, 'cpu') == 4000
    with pytest.raises(ValueError, match="got device 'meta'"):
        measure_peak_memory(two_live, 'meta')
