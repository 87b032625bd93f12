"""Shared helpers of the tool tests: tiny VTAB-1k data, tiny configs, runs.

No tests live here; the tool tests import these helpers (pytest puts this
folder on ``sys.path``).
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import types
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
CONFIGS_DIR = osp.join(REPO_ROOT, 'configs')

TASK = 'eurosat'  # a real VTAB-1k task name (10 classes)
NUM_CLASSES = 10
IMG_SIZE = 32

# Neck configs without randomness in training (dropout 0), so runs that
# should match (1 vs 2 processes, resumed vs uninterrupted) can match.
NECKS = {
    'vpt-shallow': dict(type='VPTNeck', num_tokens=4, deep=False,
                        dropout=0.0),
    'vpt-deep': dict(type='VPTNeck', num_tokens=4, deep=True, dropout=0.0),
    'vapt': dict(type='VAPTNeck', num_tokens=4, mlp_dropout=0.0,
                 conv_dropout=0.0),
}

# Split -> (number of images, first image index); train800val200 is the
# union of train800 and val200, as in the real release.
SPLITS = {
    'train800': (8, 0),
    'val200': (8, 8),
    'train800val200': (16, 0),
    'test': (8, 16),
}
LABELS_USED = 4  # labels 0..3 of the 10 eurosat classes
# Test images whose label does not match their colour: accuracy on the
# test split cannot reach 100 %, so a reported accuracy is informative.
MISLABELLED_TEST = (17, 20, 22)

TINY_VIT = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=64, num_layers=2, num_heads=4,
              feedforward_channels=128),
    img_size=IMG_SIZE,
    patch_size=8,
    drop_rate=0.0)


def write_tiny_vtab1k(data_root: str, task: str = TASK) -> Dict[str, list]:
    """Write 24 tiny images and the four list files of one VTAB-1k task.

    Each class has its own mean colour plus noise, so a model can learn it.

    Returns:
        dict: split -> list of ``(relative_path, label)``.
    """
    task_dir = osp.join(data_root, task)
    os.makedirs(osp.join(task_dir, 'images'), exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(24):
        label = i % LABELS_USED
        colour = np.array([60 * label, 255 - 60 * label, 40 + 50 * label])
        noise = rng.integers(-30, 30, size=(IMG_SIZE, IMG_SIZE, 3))
        pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
        rel = f'images/{i:03d}.png'
        Image.fromarray(pixels).save(osp.join(task_dir, rel))
        if i in MISLABELLED_TEST:
            label = (label + 1) % LABELS_USED
        entries.append((rel, label))
    lists = {}
    for split, (count, start) in SPLITS.items():
        lists[split] = entries[start:start + count]
        with open(osp.join(task_dir, f'{split}.txt'), 'w') as f:
            f.writelines(f'{rel} {label}\n' for rel, label in lists[split])
    return lists


def write_tiny_pretrained(path: str) -> str:
    """Save a randomly initialised tiny ViT as the "pretrained" backbone.

    The file has the converters' layout (``{'state_dict': {name: tensor}}``,
    no prefix), so the tiny configs load it through ``init_cfg`` like the
    ViT-B configs load ``checkpoints/vit-b16_in21k.pth``.
    """
    from mmpretrain.registry import MODELS
    torch.manual_seed(1234)
    backbone = MODELS.build(dict(TINY_VIT))
    backbone.init_weights()
    state = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    torch.save(dict(state_dict=state), path)
    return path


def _loader(data_root: str, split: str, batch_size: int,
            shuffle: bool) -> dict:
    return dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(
            type='VTAB1k',
            data_root=data_root,
            task=TASK,
            split=split,
            test_mode=split != 'train800val200',
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(IMG_SIZE, IMG_SIZE),
                     keep_ratio=False),
                dict(type='PackInputs'),
            ]))


def write_tiny_config(path: str,
                      data_root: str,
                      pretrained: str,
                      neck: str = 'vapt',
                      batch_size: int = 8,
                      max_epochs: int = 2,
                      shuffle: bool = False,
                      extra: str = '') -> str:
    """Write a config: a 64-wide 2-block ViT on 32 px tiny VTAB-1k data.

    The backbone loads ``pretrained`` (see :func:`write_tiny_pretrained`).
    It inherits the project's runtime and VTAB-1k schedule (light files)
    and replaces the schedule's 100-epoch warm-up/cosine by a cosine over
    ``max_epochs``, with a base lr large enough to move the weights.

    Returns:
        str: ``path``.
    """
    model = dict(
        type='PromptedClassifier',
        backbone=dict(
            TINY_VIT,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
        neck=NECKS[neck],
        head=dict(
            type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))
    runtime = osp.join(CONFIGS_DIR, '_base_', 'default_runtime.py')
    schedule = osp.join(CONFIGS_DIR, '_base_', 'schedules',
                        'vtab1k_sgd-cos-100e.py')
    text = f"""
_base_ = [{runtime!r}, {schedule!r}]
model = {model!r}
data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_dataloader = {_loader(data_root, 'train800val200', batch_size,
                            shuffle)!r}
val_dataloader = {_loader(data_root, 'val200', 8, False)!r}
test_dataloader = {_loader(data_root, 'test', 8, False)!r}
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
# base lr 8 -> 8 * 8 / 256 = 0.25 at a total batch of 8
optim_wrapper = dict(optimizer=dict(lr=8.0, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max={max_epochs}, by_epoch=True,
         begin=0, end={max_epochs}, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
{extra}
"""
    with open(path, 'w') as f:
        f.write(text)
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now (for torchrun's master)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(cmd: Sequence[str],
        cwd: str,
        env: Optional[Dict[str, str]] = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command with the test interpreter's environment."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env['PYTHONPATH'] = os.pathsep.join(
        [cwd, REPO_ROOT, full_env.get('PYTHONPATH', '')])
    full_env.update(env or {})
    return subprocess.run(
        list(cmd),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)


def run_tool(tool: str, args: Sequence[str], cwd: str,
             **kwargs) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` with this interpreter."""
    return run([sys.executable, osp.join(TOOLS_DIR, tool), *args], cwd,
               **kwargs)


def load_tool(relpath: str, module_name: str) -> types.ModuleType:
    """Import ``tools/<relpath>`` as a module named ``module_name`` (each
    test file gives its own name, so their copies do not share state)."""
    spec = importlib.util.spec_from_file_location(
        module_name, osp.join(TOOLS_DIR, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    """Fail with the tail of the tool's output when it did not exit 0."""
    assert proc.returncode == 0, (
        f'exit code {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}'
        f'\n--- stderr ---\n{proc.stderr[-6000:]}')


def read_json_logs(work_dir: str) -> List[dict]:
    """All records of the scalar logs under a work dir or one run's folder.

    Training writes ``<timestamp>/vis_data/<timestamp>.json``, testing
    ``<timestamp>/<timestamp>.json``.
    """
    records = []
    paths = glob.glob(osp.join(work_dir, '**', '2*.json'), recursive=True)
    for path in sorted(paths):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def load_state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The weights in the ``state_dict`` of a checkpoint the tests wrote
    themselves (without the model's backbone record, ``_extra_state``)."""
    # Our own files, written a moment ago: a trusted full load.
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    return {
        k: v
        for k, v in ckpt['state_dict'].items() if k != '_extra_state'
    }


def trainable_keys(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """The keys of the prompt neck and the head."""
    keys = [k for k in state_dict if k.startswith(('neck.', 'head.'))]
    assert keys, f'no neck./head. keys in {sorted(state_dict)[:10]}...'
    return sorted(keys)


def predict_in_process(config: str, checkpoint: str,
                       image_paths: Sequence[str]) -> torch.Tensor:
    """Class scores of images, computed without the Runner and its pipeline.

    Builds the config's model, initialises it (the backbone loads its
    pretrained file), loads the checkpoint's weights over it, normalises the
    images by hand and applies a softmax to the logits.

    Returns:
        Tensor: ``(len(image_paths), num_classes)`` scores.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import vapt_mm  # noqa: F401  (registers the models)

    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    result = model.load_state_dict(load_state_dict(checkpoint), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert all(k.startswith('backbone.') for k in result.missing_keys)
    model.eval()
    mean = torch.tensor(cfg.data_preprocessor.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.data_preprocessor.std).view(1, 3, 1, 1)
    images = np.stack(
        [np.asarray(Image.open(p).convert('RGB')) for p in image_paths])
    inputs = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        logits = model((inputs - mean) / std, mode='tensor')
    return logits.softmax(dim=1)
