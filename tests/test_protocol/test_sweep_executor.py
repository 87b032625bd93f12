"""Running jobs N at a time with one device per slot (tiny python -c jobs)."""
import json
import os.path as osp
import sys

import pytest

from vapt_mm.protocol.executor import Job, run_jobs, slot_devices


def test_slot_devices():
    assert slot_devices(3) == ['0', '1', '2']
    assert slot_devices(2, '4,7,9') == ['4', '7']
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES='3' lists "
                       'only 1 device'):
        slot_devices(2, '3')
    with pytest.raises(ValueError, match='--gpus must be a positive int'):
        slot_devices(0)


def env_job(tmp_path, key, sleep=0.0, code=0):
    out = tmp_path / f'{key}.json'
    script = ('import json, os, sys, time; time.sleep(%r); '
              'json.dump({"dev": os.environ.get("CUDA_VISIBLE_DEVICES"), '
              '"omp": os.environ.get("OMP_NUM_THREADS")}, open(%r, "w")); '
              'print("hello from %s"); sys.exit(%d)' %
              (sleep, str(out), key, code))
    return Job(key, [sys.executable, '-c', script],
               str(tmp_path / 'logs' / f'{key}.log'))


def test_two_slots_get_their_own_device(tmp_path, monkeypatch):
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    jobs = [env_job(tmp_path, 'a', 0.5), env_job(tmp_path, 'b', 0.5)]
    started = {}
    codes = run_jobs(
        jobs, 2, on_finish=lambda job, code: None,
        on_start=lambda job, slot: started.setdefault(job.key, slot))
    assert codes == {'a': 0, 'b': 0}
    assert started == {'a': 0, 'b': 1}
    seen = {k: json.load(open(tmp_path / f'{k}.json')) for k in 'ab'}
    assert seen['a']['dev'] == '0' and seen['b']['dev'] == '1'
    assert seen['a']['omp'] is not None
    with open(tmp_path / 'logs' / 'a.log') as f:
        log = f.read()
    assert log.startswith('\n$ ') and 'hello from a' in log


def test_one_slot_keeps_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '5')
    codes = run_jobs([env_job(tmp_path, 'a')], 1, lambda job, code: None)
    assert codes == {'a': 0}
    assert json.load(open(tmp_path / 'a.json'))['dev'] == '5'


def test_failures_and_follow_up_jobs(tmp_path):
    finished = []

    def on_finish(job, code):
        finished.append((job.key, code))
        if job.key == 'a':
            return env_job(tmp_path, 'a-follow-up')
        return None

    codes = run_jobs([env_job(tmp_path, 'a'),
                      env_job(tmp_path, 'b', code=3)], 1, on_finish)
    assert codes == {'a': 0, 'a-follow-up': 0, 'b': 3}
    # the follow-up runs before the rest of the queue
    assert [k for k, _ in finished] == ['a', 'a-follow-up', 'b']
    assert osp.isfile(tmp_path / 'a-follow-up.json')
