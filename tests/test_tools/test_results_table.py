"""tools/analysis/results_table.py: on the tiny sweep of test_sweep.py and
on synthetic summaries covering every group; every mean is recomputed here
from the per-seed numbers."""
import csv
import json
import os
import os.path as osp

import numpy as np
import pytest
from test_sweep import REPO_ROOT, TASKS, finished_sweep, load_tool

from vapt_mm.datasets import (FGVC_DATASETS, VTAB1K_GROUPS,
                              VTAB1K_TASK_GROUP, VTAB1K_TASKS)
from vapt_mm.protocol.published_results import PUBLISHED_SUMMARY

TABLE_TOOL = osp.join(REPO_ROOT, 'tools', 'analysis', 'results_table.py')
FGVC_TASKS = tuple(FGVC_DATASETS)


@pytest.fixture(scope='module')
def sweep(tmp_path_factory):
    return finished_sweep(tmp_path_factory)


def run_table(*argv):
    return load_tool(TABLE_TOOL).main(list(argv))


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def summary_row(out_dir, label):
    rows = read_csv(osp.join(out_dir, 'results_summary.csv'))
    return next(r for r in rows if r['method'] == label)


def md_row(markdown, first_cell):
    return next(line for line in markdown.splitlines()
                if line.startswith(f'| {first_cell} |'))


def is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_table_of_the_tiny_sweep(sweep, tmp_path):
    out = str(tmp_path / 'table')
    assert run_table(sweep['work_dir'], '--labels', 'tiny VAPT',
                     '--out-dir', out) == 0
    seeds = {}
    for task in TASKS:
        with open(osp.join(sweep['work_dir'], task,
                           'sweep_summary.json')) as f:
            seeds[task] = json.load(f)['test_top1']
    with open(osp.join(out, 'results_table.md')) as f:
        markdown = f.read()
    for task in TASKS:
        mean, std = np.mean(seeds[task]), np.std(seeds[task])
        assert f'| {task} | {VTAB1K_TASK_GROUP[task]} | {mean:.2f} ± ' \
               f'{std:.2f} |' in markdown

    # dtd is Natural, eurosat Specialized: one task each, marked incomplete
    ours = md_row(markdown, 'tiny VAPT')
    assert f'{np.mean(seeds["dtd"]):.2f} (1 of 7 tasks)' in ours
    assert f'{np.mean(seeds["eurosat"]):.2f} (1 of 4 tasks)' in ours
    assert '– (0 of 8 tasks)' in ours
    overall = np.mean([np.mean(seeds['dtd']), np.mean(seeds['eurosat'])])
    assert f'{overall:.2f} (2 of 19 tasks)' in ours
    assert md_row(markdown, 'VAPT (published)').split(' | ')[-1] == \
        f'{PUBLISHED_SUMMARY["VAPT"]["VTAB mean"]:.2f} |'

    row = summary_row(out, 'tiny VAPT')
    assert float(row['Natural']) == pytest.approx(np.mean(seeds['dtd']),
                                                  abs=1e-4)
    assert float(row['VTAB mean']) == pytest.approx(overall, abs=1e-4)
    assert row['Natural tasks'] == '1/7' and row['VTAB mean tasks'] == '2/19'
    assert row['Structured'] == '' and row['Structured tasks'] == '0/8'
    # tuned share of the tiny model, from the summaries' parameter counts
    shares = []
    for task in TASKS:
        with open(osp.join(sweep['work_dir'], task,
                           'sweep_summary.json')) as f:
            params = json.load(f)['params']
        shares.append(100 * params['trainable'] / params['total'])
    assert float(row['tuned %']) == pytest.approx(np.mean(shares), rel=1e-4)

    per_task = {r['task']: r for r in read_csv(
        osp.join(out, 'results_per_task.csv'))}
    assert float(per_task['dtd']['tiny VAPT mean']) == pytest.approx(
        np.mean(seeds['dtd']), abs=1e-4)
    assert per_task['dtd']['tiny VAPT seeds'] == '2'
    assert per_task['cifar']['tiny VAPT mean'] == ''
    assert per_task['cifar']['VPT-deep (published)'] == '78.8'
    assert is_png(osp.join(out, 'results_per_task.png'))


def write_summary(work_dir, task, benchmark, scores, complete=True,
                  trainable=1000, total=100000):
    os.makedirs(osp.join(work_dir, task), exist_ok=True)
    summary = dict(
        version=1,
        task=task,
        benchmark=benchmark,
        group=VTAB1K_TASK_GROUP.get(task, 'FGVC'),
        method='VAPT',
        seeds=[42, 44, 82, 100, 800],
        test_top1=list(scores),
        complete=complete,
        params=dict(trainable=trainable, total=total,
                    trainable_percent=100 * trainable / total))
    with open(osp.join(work_dir, task, 'sweep_summary.json'), 'w') as f:
        json.dump(summary, f)


def synthetic_sweep(work_dir, seed=0, skip=()):
    """Summaries for every VTAB-1k task and FGVC data set; returns the
    per-task means computed here."""
    rng = np.random.default_rng(seed)
    means = {}
    for i, task in enumerate(VTAB1K_TASKS + FGVC_TASKS):
        scores = rng.uniform(20, 99, size=5).round(2)
        if task in skip:
            continue
        benchmark = 'vtab1k' if task in VTAB1K_TASKS else 'fgvc'
        write_summary(work_dir, task, benchmark, scores,
                      trainable=1000 + i)
        means[task] = float(np.mean(scores))
    return means


def test_group_means_of_a_full_benchmark(tmp_path):
    work_dir = str(tmp_path / 'full')
    means = synthetic_sweep(work_dir)
    out = str(tmp_path / 'table')
    assert run_table(work_dir, '--out-dir', out, '--no-plot') == 0
    row = summary_row(out, 'full')
    for group, tasks in VTAB1K_GROUPS.items():
        expected = sum(means[t] for t in tasks) / len(tasks)
        assert float(row[group]) == pytest.approx(expected, abs=1e-3)
        assert row[f'{group} tasks'] == f'{len(tasks)}/{len(tasks)}'
    assert float(row['VTAB mean']) == pytest.approx(
        sum(means[t] for t in VTAB1K_TASKS) / 19, abs=1e-3)
    assert float(row['FGVC']) == pytest.approx(
        sum(means[t] for t in FGVC_TASKS) / 5, abs=1e-3)
    assert float(row['tuned %']) == pytest.approx(
        np.mean([(1000 + i) / 1000 for i in range(24)]), rel=1e-4)
    with open(osp.join(out, 'results_table.md')) as f:
        markdown = f.read()
    assert ' tasks)' not in md_row(markdown, 'full')
    assert '## FGVC per data set' in markdown
    assert not osp.exists(osp.join(out, 'results_per_task.png'))


def test_incomplete_groups_are_marked_not_hidden(tmp_path):
    work_dir = str(tmp_path / 'partial')
    means = synthetic_sweep(work_dir, seed=1, skip=('kitti', 'cub'))
    # dtd's seeds are not all scored: shown, but left out of the means
    write_summary(work_dir, 'dtd', 'vtab1k', [50.0, 60.0], complete=False)
    del means['dtd']
    out = str(tmp_path / 'table')
    assert run_table(work_dir, '--out-dir', out) == 0
    row = summary_row(out, 'partial')
    natural = [t for t in VTAB1K_GROUPS['Natural'] if t != 'dtd']
    structured = [t for t in VTAB1K_GROUPS['Structured'] if t != 'kitti']
    assert float(row['Natural']) == pytest.approx(
        np.mean([means[t] for t in natural]), abs=1e-3)
    assert float(row['Structured']) == pytest.approx(
        np.mean([means[t] for t in structured]), abs=1e-3)
    assert row['Natural tasks'] == '6/7'
    assert row['Specialized tasks'] == '4/4'
    assert row['Structured tasks'] == '7/8'
    assert row['VTAB mean tasks'] == '17/19'
    assert row['FGVC tasks'] == '4/5'
    with open(osp.join(out, 'results_table.md')) as f:
        markdown = f.read()
    ours = md_row(markdown, 'partial')
    assert '(6 of 7 tasks)' in ours and '(7 of 8 tasks)' in ours
    assert '(17 of 19 tasks)' in ours and '(4 of 5 tasks)' in ours
    assert 'of 4 tasks' not in ours
    assert '55.00 ± 5.00 (incomplete: 2 of 5 seeds)' in md_row(
        markdown, 'dtd')
    assert 'partial/dtd' in markdown
    assert is_png(osp.join(out, 'results_per_task.png'))


def test_two_methods_side_by_side(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    means_a = synthetic_sweep(a, seed=2)
    means_b = synthetic_sweep(b, seed=3)
    out = str(tmp_path / 'table')
    assert run_table(a, b, '--labels', 'VAPT p10', 'VPT-deep p10',
                     '--out-dir', out, '--no-plot') == 0
    per_task = {r['task']: r for r in read_csv(
        osp.join(out, 'results_per_task.csv'))}
    assert float(per_task['kitti']['VAPT p10 mean']) == pytest.approx(
        means_a['kitti'], abs=1e-3)
    assert float(per_task['kitti']['VPT-deep p10 mean']) == pytest.approx(
        means_b['kitti'], abs=1e-3)
    labels = [r['method'] for r in read_csv(
        osp.join(out, 'results_summary.csv'))]
    assert labels == ['VAPT p10', 'VPT-deep p10', 'VPT-deep (published)',
                      'VAPT (published)', 'Full (published)']


def test_bad_inputs_are_named(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='No sweep_summary.json in'):
        run_table(str(empty), '--out-dir', str(tmp_path / 'o'))
    a = str(tmp_path / 'x' / 'same')
    b = str(tmp_path / 'y' / 'same')
    synthetic_sweep(a)
    synthetic_sweep(b)
    with pytest.raises(ValueError, match=r"label\(s\) \['same'\]"):
        run_table(a, b, '--out-dir', str(tmp_path / 'o'), '--no-plot')
    with pytest.raises(ValueError, match='2 labels for 1 work dirs'):
        run_table(a, '--labels', 'p', 'q', '--out-dir', str(tmp_path / 'o'))
    bad = tmp_path / 'bad' / 'dtd'
    bad.mkdir(parents=True)
    (bad / 'sweep_summary.json').write_text('{"task": "dtd"}')
    with pytest.raises(ValueError, match="is not a sweep summary: it lacks "
                       r"\['benchmark', 'test_top1', 'complete'\]"):
        run_table(str(tmp_path / 'bad'), '--out-dir', str(tmp_path / 'o'))
