"""The files the sweep and the results table write: a failure while writing
leaves the previous file intact and no temporary file behind."""
import csv
import json
import os
import os.path as osp

import pytest
from interrupted_writes import (SimulatedWriteError, failing_fsync, snapshot,
                                writes_half_then_fails)

from vapt_mm.protocol import results_table
from vapt_mm.protocol.results_table import load_method, write_results
from vapt_mm.protocol.run_state import RESULT_FILE, write_result
from vapt_mm.protocol.runs import grid_run
from vapt_mm.protocol.slurm import write_slurm_array
from vapt_mm.protocol.summary import SUMMARY_FILE, write_summary


def summary(task='dtd', scores=(70.0, 72.0)):
    return dict(
        version=1,
        task=task,
        benchmark='vtab1k',
        group='Natural',
        method='VAPT',
        seeds=[42, 44],
        test_top1=list(scores),
        complete=True,
        params=dict(trainable=10, total=1000, trainable_percent=1.0))


def test_run_result(tmp_path, monkeypatch):
    run = grid_run(str(tmp_path), 'dtd', 10.0, 0.001, 42, 64,
                   ('train800', 'val200'), 2)
    path = write_result(run, 80.0, osp.join(run.work_dir, 'scalars.json'))
    assert path == osp.join(run.work_dir, RESULT_FILE)
    before = snapshot(run.work_dir)

    monkeypatch.setattr(json, 'dump', writes_half_then_fails(json.dump))
    with pytest.raises(SimulatedWriteError):
        write_result(run, 90.0, osp.join(run.work_dir, 'scalars.json'))
    assert snapshot(run.work_dir) == before
    assert json.loads(before[RESULT_FILE])['score'] == 80.0


def test_task_summary(tmp_path, monkeypatch):
    task_dir = str(tmp_path / 'dtd')
    write_summary(task_dir, summary())
    before = snapshot(task_dir)

    monkeypatch.setattr(json, 'dump', writes_half_then_fails(json.dump))
    with pytest.raises(SimulatedWriteError):
        write_summary(task_dir, summary(scores=(10.0, 20.0)))
    assert snapshot(task_dir) == before
    assert json.loads(before[SUMMARY_FILE])['test_top1'] == [70.0, 72.0]


def test_slurm_array(tmp_path, monkeypatch):
    runs = [('dtd/grid/lr1_wd0', 'python tools/train.py a.py')]
    script, commands = write_slurm_array(str(tmp_path), runs, stamp='s')
    slurm_dir = osp.dirname(script)
    before = snapshot(slurm_dir)
    assert sorted(before) == ['s.sh', 's.txt']
    assert os.access(script, os.X_OK)

    monkeypatch.setattr(os, 'fsync', failing_fsync)
    with pytest.raises(SimulatedWriteError):
        write_slurm_array(str(tmp_path), runs * 2, stamp='s')
    # the earlier array is untouched and no half-written s_1.* is left
    assert snapshot(slurm_dir) == before


def sweep_dir(tmp_path):
    work_dir = tmp_path / 'sweep'
    write_summary(str(work_dir / 'dtd'), summary())
    return str(work_dir)


def test_results_markdown(tmp_path, monkeypatch):
    work_dir, out = sweep_dir(tmp_path), str(tmp_path / 'out')
    write_results([work_dir], out, plot=False)
    before = snapshot(out)
    assert sorted(before) == [
        'results_per_task.csv', 'results_summary.csv', 'results_table.md'
    ]
    write_summary(osp.join(work_dir, 'dtd'), summary(scores=(1.0, 2.0)))

    monkeypatch.setattr(os, 'fsync', failing_fsync)
    with pytest.raises(SimulatedWriteError):
        write_results([work_dir], out, plot=False)
    assert snapshot(out) == before


@pytest.mark.parametrize('fail_at', ['results_summary', 'results_per_task'])
def test_results_csvs(tmp_path, monkeypatch, fail_at):
    work_dir, out = sweep_dir(tmp_path), str(tmp_path / 'out')
    table = results_table.build_table([load_method(work_dir)])
    written = results_table.write_csvs(table, out)
    before = snapshot(out)
    real_writer = csv.writer
    calls = []

    def writer_failing_after_one_row(f, *args, **kwargs):
        real = real_writer(f, *args, **kwargs)
        calls.append(f)
        fail = len(calls) == (1 if fail_at == 'results_summary' else 2)

        class Writer:

            def writerow(self, row):
                real.writerow(row)
                if fail:
                    raise SimulatedWriteError('disk full (simulated)')

        return Writer()

    monkeypatch.setattr(csv, 'writer', writer_failing_after_one_row)
    with pytest.raises(SimulatedWriteError):
        results_table.write_csvs(table, out)
    assert snapshot(out) == before
    assert set(written.values()) == {
        osp.join(out, 'results_summary.csv'),
        osp.join(out, 'results_per_task.csv')
    }


def test_results_plot(tmp_path, monkeypatch):
    pytest.importorskip('matplotlib')
    from matplotlib.figure import Figure

    from vapt_mm.protocol.results_plot import plot_per_task
    methods = [load_method(sweep_dir(tmp_path))]
    path = str(tmp_path / 'plot' / 'results_per_task.png')
    plot_per_task(methods, path)
    folder = osp.dirname(path)
    before = snapshot(folder)
    assert before['results_per_task.png'].startswith(b'\x89PNG')

    real_savefig = Figure.savefig
    monkeypatch.setattr(
        Figure, 'savefig',
        lambda fig, f, **kwargs: writes_half_then_fails(
            lambda _, target: real_savefig(fig, target, **kwargs))(None, f))
    with pytest.raises(SimulatedWriteError):
        plot_per_task(methods, path)
    assert snapshot(folder) == before
