"""vapt_mm.benchmark.report: medians, ratios to the baseline, the table,
the JSON file."""
import json

import pytest
from interrupted_writes import (SimulatedWriteError, snapshot,
                                writes_half_then_fails)

from vapt_mm.benchmark import (build_method_cases, format_markdown_table,
                               parse_methods, summarize_rows, write_json)


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


def test_json_result_and_an_interrupted_rewrite(tmp_path, monkeypatch):
    path = tmp_path / 'bench' / 'result.json'
    write_json(dict(rows=[dict(label='bare')], table='| a |'), str(path))
    assert json.loads(path.read_text()) == dict(
        rows=[dict(label='bare')], table='| a |')
    assert path.read_text().endswith('}\n')
    before = snapshot(path.parent)

    monkeypatch.setattr(json, 'dump', writes_half_then_fails(json.dump))
    with pytest.raises(SimulatedWriteError):
        write_json(dict(rows=[dict(label='other')] * 50), str(path))
    assert snapshot(path.parent) == before
