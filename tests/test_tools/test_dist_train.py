"""tools/dist_train.sh and tools/dist_test.sh with 2 CPU processes (gloo)."""
import os.path as osp
import pickle
import sys

import pytest
import torch
from test_train_helpers import (SPLITS, TASK, TOOLS_DIR, assert_ok, free_port,
                                load_state_dict, predict_in_process,
                                read_json_logs, run, run_tool, trainable_keys,
                                write_tiny_config, write_tiny_pretrained,
                                write_tiny_vtab1k)

from vapt_mm.engine.dist_cpu import is_cpu_only


def _dist_env() -> dict:
    # a fresh port: other test runs may use torchrun on this machine too
    return dict(PYTHON=sys.executable, PORT=str(free_port()))


@pytest.mark.skipif(not is_cpu_only(), reason='tests the gloo on CPU path')
def test_two_cpu_processes_match_one_process(tmp_path):
    data_root = str(tmp_path / 'vtab-1k')
    lists = write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(tmp_path / 'vit.pth'))
    # VAPT without dropout and an unshuffled sampler: the only differences
    # between the runs are how the batch is split across processes.
    config = write_tiny_config(
        str(tmp_path / 'tiny.py'), data_root, pretrained, neck='vapt',
        batch_size=8, shuffle=False)

    # 1 process x batch 8
    single_dir = str(tmp_path / 'single')
    assert_ok(
        run_tool('train.py', [config, '--work-dir', single_dir],
                 cwd=str(tmp_path)))
    # 2 processes x batch 4: DefaultSampler(shuffle=False) gives rank r the
    # images r, r+2, r+4, ..., so each step sees the same 8 images as the
    # single process, and auto_scale_lr sees the same total batch of 8.
    dist_dir = str(tmp_path / 'dist')
    proc = run([
        'bash',
        osp.join(TOOLS_DIR, 'dist_train.sh'), config, '2', '--work-dir',
        dist_dir, '--cfg-options', 'train_dataloader.batch_size=4'
    ],
               cwd=str(tmp_path),
               env=_dist_env())
    assert_ok(proc)
    assert 'Initialised a gloo process group on CPU: rank 0 of 2' in (
        proc.stdout + proc.stderr)
    assert 'Scaling the original LR by 0.03125' in proc.stdout + proc.stderr
    # every rank closes the process group before it exits (left to the
    # interpreter's exit, gloo's threads sometimes abort a finished run)
    assert (proc.stdout + proc.stderr).count(
        'Closed the distributed process group.') >= 1

    single = load_state_dict(osp.join(single_dir, 'epoch_2.pth'))
    dist = load_state_dict(osp.join(dist_dir, 'epoch_2.pth'))
    first = load_state_dict(osp.join(single_dir, 'epoch_1.pth'))
    keys = trainable_keys(single)
    assert keys == trainable_keys(dist)
    # Tolerance: the two runs differ only in float32 rounding. DDP averages
    # two means over 4 images (gloo all-reduce), the single process takes
    # one mean over 8; each gradient differs by a few float32 ulps
    # (~1e-7 relative) and 4 SGD steps (lr <= 0.25, momentum 0.9) carry
    # that into weights of magnitude <= ~2 as absolute errors of ~1e-6.
    # 1e-5 is ten times that and far below what the weights move in one
    # epoch (checked below), so a wrong batch split or lr would fail.
    for key in keys:
        torch.testing.assert_close(
            dist[key], single[key], rtol=1e-5, atol=1e-5, msg=key)
    moved = max((single[k] - first[k]).abs().max().item() for k in keys)
    assert moved > 1e-2

    # dist_test.sh on the same 2 processes: predictions of all 8 test
    # images in dataset order, equal to a computation without the Runner
    out = str(tmp_path / 'preds.pkl')
    test_dir = str(tmp_path / 'dist_test')
    proc = run([
        'bash',
        osp.join(TOOLS_DIR, 'dist_test.sh'), config,
        osp.join(dist_dir, 'epoch_2.pth'), '2', '--work-dir', test_dir,
        '--out', out
    ],
               cwd=str(tmp_path),
               env=_dist_env())
    assert_ok(proc)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == SPLITS['test'][0]
    assert [int(p['gt_label']) for p in preds] == [
        label for _, label in lists['test']
    ]
    image_paths = [osp.join(data_root, TASK, rel) for rel, _ in lists['test']]
    reference = predict_in_process(config, osp.join(dist_dir, 'epoch_2.pth'),
                                   image_paths)
    dumped = torch.stack([p['pred_score'] for p in preds])
    torch.testing.assert_close(dumped, reference, rtol=1e-4, atol=1e-5)
    accuracy = 100.0 * sum(
        int(p['pred_label']) == int(p['gt_label']) for p in preds) / len(preds)
    reported = [r for r in read_json_logs(test_dir) if 'accuracy/top1' in r]
    assert reported and abs(reported[0]['accuracy/top1'] - accuracy) < 1e-6
