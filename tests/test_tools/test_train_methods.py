"""tools/train.py then tools/test.py for VPT-shallow, VPT-deep and VAPT.

Each run trains a tiny ViT on tiny data in the VTAB-1k layout for 2 epochs
(validating after each), then tests the last checkpoint with --out.
"""
import glob
import math
import os.path as osp
import pickle

import pytest
import torch
from test_train_helpers import (MISLABELLED_TEST, SPLITS, TASK, assert_ok,
                                load_state_dict, predict_in_process,
                                read_json_logs, run_tool, trainable_keys,
                                write_tiny_config, write_tiny_pretrained,
                                write_tiny_vtab1k)


@pytest.mark.parametrize('neck', ['vpt-shallow', 'vpt-deep', 'vapt'])
def test_train_validate_and_test(tmp_path, neck):
    data_root = str(tmp_path / 'vtab-1k')
    lists = write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(tmp_path / 'vit.pth'))
    config = write_tiny_config(
        str(tmp_path / 'tiny.py'), data_root, pretrained, neck=neck)
    work_dir = str(tmp_path / 'work')

    proc = run_tool('train.py', [config, '--work-dir', work_dir],
                    cwd=str(tmp_path))
    assert_ok(proc)

    # training: one checkpoint per epoch, finite losses, val accuracy
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))
    records = read_json_logs(work_dir)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 4  # 2 epochs x 16 images / batch 8
    assert all(math.isfinite(loss) for loss in losses)
    val = [r for r in records if 'accuracy/top1' in r]
    assert [r['step'] for r in val] == [1, 2]  # epochs validated
    assert all(0.0 <= r['accuracy/top1'] <= 100.0 for r in val)

    # the prompts and the head trained, and only they are in the
    # (trainable-only) checkpoints
    first = load_state_dict(osp.join(work_dir, 'epoch_1.pth'))
    last = load_state_dict(osp.join(work_dir, 'epoch_2.pth'))
    assert trainable_keys(last) == sorted(last)
    assert any(k.startswith('neck.') for k in last)
    changed = [k for k in last if not torch.equal(first[k], last[k])]
    assert any(k.startswith('neck.') for k in changed)
    assert any(k.startswith('head.') for k in changed)

    # test the last checkpoint and dump its predictions
    out = str(tmp_path / 'preds.pkl')
    test_dir = str(tmp_path / 'test_work')
    proc = run_tool(
        'test.py', [
            config,
            osp.join(work_dir, 'epoch_2.pth'), '--work-dir', test_dir,
            '--out', out
        ],
        cwd=str(tmp_path))
    assert_ok(proc)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == SPLITS['test'][0]
    expected_gt = [label for _, label in lists['test']]
    assert [int(p['gt_label']) for p in preds] == expected_gt
    correct = [int(p['pred_label']) == int(p['gt_label']) for p in preds]
    accuracy = 100.0 * sum(correct) / len(correct)
    # mislabelled test images cap the accuracy below 100 %
    assert accuracy <= 100.0 * (1 - len(MISLABELLED_TEST) / len(preds))

    # the dumped scores are those of the trained prompts and head on the
    # pretrained backbone (restored from its file, as the checkpoint holds
    # no backbone), computed here without the Runner
    image_paths = [osp.join(data_root, TASK, rel) for rel, _ in lists['test']]
    reference = predict_in_process(config, osp.join(work_dir, 'epoch_2.pth'),
                                   image_paths)
    dumped = torch.stack([p['pred_score'] for p in preds])
    torch.testing.assert_close(dumped, reference, rtol=1e-4, atol=1e-5)

    test_records = [r for r in read_json_logs(test_dir)
                    if 'accuracy/top1' in r]
    assert len(test_records) == 1
    assert test_records[0]['accuracy/top1'] == pytest.approx(accuracy)
    assert glob.glob(osp.join(test_dir, '*', '*.log'))
