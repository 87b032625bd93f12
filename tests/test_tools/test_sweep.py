"""End-to-end tests of tools/sweep.py on two tiny VTAB-1k tasks.

One real sweep (2 tasks x 2 x 2 grid + 2 seeds = 12 tools/train.py runs, two
at a time) is shared by this file and test_results_table.py through
:func:`finished_sweep`; every check reads the files the runs wrote itself
and compares them with what the sweep reports.
"""
import glob
import importlib.util
import io
import json
import logging
import os
import os.path as osp
import shutil
import subprocess
import sys
from contextlib import contextmanager
from typing import Dict, List

import numpy as np
import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SWEEP_TOOL = osp.join(REPO_ROOT, 'tools', 'sweep.py')

TASKS = ('eurosat', 'dtd')
NUM_CLASSES = {'eurosat': 10, 'dtd': 47}
LRS = (50.0, 0.05)
WDS = (0.01, 0.0)
SEEDS = (42, 44)
BATCH = 4
GRID_NAMES = ('lr50_wd0.01', 'lr50_wd0', 'lr0.05_wd0.01', 'lr0.05_wd0')

TINY_VIT = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=64, num_layers=2, num_heads=4,
              feedforward_channels=128),
    img_size=32,
    patch_size=8,
    drop_rate=0.0)

CONFIG_TEMPLATE = """
_base_ = [{runtime!r}]
model = dict(
    type='PromptedClassifier',
    backbone=dict({vit}, init_cfg=dict(type='Pretrained',
                                       checkpoint={pretrained!r})),
    neck=dict(type='VAPTNeck', num_tokens=4),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64),
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True))
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size={batch}, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='VTAB1k', data_root={data_root!r}, task='eurosat',
                 split='train800val200', pipeline=pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VTAB1k', data_root={data_root!r}, task='eurosat',
                 split='test', test_mode=True, pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                    weight_decay=0.0))
auto_scale_lr = dict(base_batch_size=256, enable=True)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=1, by_epoch=True,
                        begin=0, end=1, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=1))
"""


def write_tiny_setup(root: str) -> Dict[str, str]:
    """Toy VTAB-1k data (eurosat, dtd), a tiny "pretrained" ViT and a
    1-epoch batch-4 config template; all paths absolute."""
    from mmpretrain.registry import MODELS

    from vapt_mm.datasets.toy_data import make_toy_vtab1k
    os.makedirs(root, exist_ok=True)
    data_root = osp.join(root, 'vtab-1k')
    make_toy_vtab1k(
        data_root,
        tasks=TASKS,
        sizes=dict(train800=8, val200=8, test=8),
        image_size=32)
    torch.manual_seed(0)
    backbone = MODELS.build(dict(TINY_VIT))
    backbone.init_weights()
    pretrained = osp.join(root, 'tiny_vit.pth')
    torch.save(dict(state_dict=backbone.state_dict()), pretrained)
    config = osp.join(root, 'tiny_vapt_vtab.py')
    with open(config, 'w') as f:
        f.write(
            CONFIG_TEMPLATE.format(
                runtime=osp.join(REPO_ROOT, 'configs', '_base_',
                                 'default_runtime.py'),
                vit=', '.join(f'{k}={v!r}' for k, v in TINY_VIT.items()),
                pretrained=pretrained,
                batch=BATCH,
                data_root=data_root))
    return dict(root=root, config=config, data_root=data_root)


def sweep_args(setup: Dict[str, str], work_dir: str, *extra: str) -> List[str]:
    """tools/sweep.py arguments of the shared tiny sweep."""
    return [
        setup['config'], '--work-dir', work_dir, '--tasks', *TASKS, '--lrs',
        *map(str, LRS), '--wds', *map(str, WDS), '--seeds',
        *map(str, SEEDS), *extra
    ]


def load_tool(path: str):
    """Import a tools/ script as a module (to call its main in-process)."""
    name = 'tool_' + osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def captured_log():
    """Collect what print_log(logger='current') writes."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def read_records(run_dir: str) -> List[dict]:
    """Every line of the runs' scalars.json files, oldest first."""
    records = []
    for path in sorted(
            glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def final_top1(run_dir: str) -> float:
    """The accuracy/top1 logged after epoch 1 (the last one)."""
    finals = [
        r['accuracy/top1'] for r in read_records(run_dir)
        if 'accuracy/top1' in r and r['step'] == 1
    ]
    assert finals, f'no final validation in {run_dir}'
    return finals[-1]


def dumped_config(run_dir: str):
    """The config mmengine dumped into the run's work dir."""
    from mmengine.config import Config
    return Config.fromfile(
        osp.join(run_dir, 'tiny_vapt_vtab.py'), import_custom_modules=False)


def snapshot(work_dir: str) -> Dict[str, float]:
    """Path -> mtime of every file of the runs (summaries excluded)."""
    out = {}
    for dirpath, _, files in os.walk(work_dir):
        for name in files:
            if name != 'sweep_summary.json':
                path = osp.join(dirpath, name)
                out[path] = os.stat(path).st_mtime_ns
    return out


_SETUPS: Dict[str, dict] = {}
_SWEEPS: Dict[str, dict] = {}


def tiny_setup(tmp_path_factory) -> dict:
    """The toy data, weights and config, written once per session."""
    root = str(tmp_path_factory.getbasetemp() / 'tiny_sweep')
    if root not in _SETUPS:
        _SETUPS[root] = write_tiny_setup(root)
    return _SETUPS[root]


def finished_sweep(tmp_path_factory) -> dict:
    """Run the tiny sweep once per test session (a second request, e.g.
    from test_results_table.py, gets the same finished work dir)."""
    setup = tiny_setup(tmp_path_factory)
    root = setup['root']
    if root not in _SWEEPS:
        work_dir = osp.join(root, 'work_dirs', 'sweep_vapt')
        env = dict(os.environ, OMP_NUM_THREADS='1')
        proc = subprocess.run(
            [sys.executable, SWEEP_TOOL,
             *sweep_args(setup, work_dir, '--gpus', '2')],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900)
        _SWEEPS[root] = dict(setup, work_dir=work_dir, proc=proc)
    result = _SWEEPS[root]
    proc = result['proc']
    assert proc.returncode == 0, (
        f'exit code {proc.returncode}\n--- stdout ---\n{proc.stdout[-5000:]}'
        f'\n--- stderr ---\n{proc.stderr[-5000:]}')
    return result


@pytest.fixture(scope='module')
def sweep(tmp_path_factory):
    return finished_sweep(tmp_path_factory)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    return tiny_setup(tmp_path_factory)


def expected_best(scores: Dict[tuple, float]) -> tuple:
    """The documented rule, written out: best score, then the smaller lr,
    then the larger weight decay."""
    top = max(scores.values())
    tied = [pair for pair, s in scores.items() if abs(s - top) < 1e-9]
    smallest_lr = min(lr for lr, _ in tied)
    return smallest_lr, max(wd for lr, wd in tied if lr == smallest_lr)


@pytest.mark.parametrize('task', TASKS)
def test_sweep_picks_best_pair_then_trains_seeds(sweep, task):
    task_dir = osp.join(sweep['work_dir'], task)
    with open(osp.join(task_dir, 'sweep_summary.json')) as f:
        summary = json.load(f)
    assert summary['complete'] and summary['task'] == task
    assert summary['group'] == {'eurosat': 'Specialized',
                                'dtd': 'Natural'}[task]

    # Grid: every pair trained on train800, scored on val200, with the lr
    # scaled by batch / 256 and auto scaling off.
    scores = {}
    for lr in LRS:
        for wd in WDS:
            name = f'lr{lr:g}_wd{wd:g}'
            run_dir = osp.join(task_dir, 'grid', name)
            cfg = dumped_config(run_dir)
            assert cfg.train_dataloader.dataset.task == task
            assert cfg.train_dataloader.dataset.split == 'train800'
            assert cfg.val_dataloader.dataset.split == 'val200'
            assert cfg.model.head.num_classes == NUM_CLASSES[task]
            assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
                lr * BATCH / 256)
            assert cfg.optim_wrapper.optimizer.weight_decay == wd
            assert cfg.auto_scale_lr.enable is False
            first_lr = next(r['lr'] for r in read_records(run_dir)
                            if 'lr' in r)
            assert first_lr == pytest.approx(lr * BATCH / 256)
            scores[(lr, wd)] = final_top1(run_dir)
    reported = {(g['base_lr'], g['weight_decay']): g['val_top1']
                for g in summary['grid']}
    assert reported == scores

    best = expected_best(scores)
    assert (summary['best']['base_lr'],
            summary['best']['weight_decay']) == best
    assert summary['best']['lr'] == pytest.approx(best[0] * BATCH / 256)

    # Seeds: train800val200 -> test with the best pair.
    tests = []
    for seed in SEEDS:
        run_dir = osp.join(task_dir, 'final', f'seed{seed}')
        cfg = dumped_config(run_dir)
        assert cfg.train_dataloader.dataset.split == 'train800val200'
        assert cfg.val_dataloader.dataset.split == 'test'
        assert cfg.randomness.seed == seed
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
            best[0] * BATCH / 256)
        assert cfg.optim_wrapper.optimizer.weight_decay == best[1]
        tests.append(final_top1(run_dir))
    assert summary['test_top1'] == tests
    assert summary['test_top1_mean'] == pytest.approx(np.mean(tests))
    assert summary['test_top1_std'] == pytest.approx(np.std(tests))

    # Parameter count of the tiny VAPT model, head included.
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(sweep['config'], import_custom_modules=False)
    cfg.model.head.num_classes = NUM_CLASSES[task]
    model = MODELS.build(cfg.model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert summary['params']['trainable'] == trainable
    assert summary['params']['total'] == total


def test_second_call_reruns_nothing(sweep, monkeypatch):
    before = snapshot(sweep['work_dir'])
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    tool = load_tool(SWEEP_TOOL)
    with captured_log() as log:
        code = tool.main(sweep_args(sweep, sweep['work_dir']))
    assert code == 0
    assert snapshot(sweep['work_dir']) == before
    text = log.getvalue()
    for task in TASKS:
        for name in GRID_NAMES:
            assert f'skipped {task}/grid/{name}:' in text
        for seed in SEEDS:
            assert f'skipped {task}/final/seed{seed}:' in text
    assert 'training ' not in text and 'evaluating ' not in text


def test_run_without_final_score_is_scored_from_its_checkpoint(
        sweep, monkeypatch):
    """A run that trained every epoch but lost its final validation (killed
    during it) is scored with tools/test.py on its last checkpoint, not
    trained again."""
    run_dir = osp.join(sweep['work_dir'], 'eurosat', 'final', 'seed44')
    score = final_top1(run_dir)
    checkpoint = osp.join(run_dir, 'epoch_1.pth')
    ckpt_mtime = os.stat(checkpoint).st_mtime_ns
    os.remove(osp.join(run_dir, 'sweep_result.json'))
    for path in glob.glob(osp.join(run_dir, '*', 'vis_data', '*.json')):
        with open(path) as f:
            kept = [line for line in f if 'accuracy/top1' not in line]
        with open(path, 'w') as f:
            f.writelines(kept)
    others = {
        p: m for p, m in snapshot(sweep['work_dir']).items()
        if not p.startswith(run_dir + os.sep)
    }

    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    tool = load_tool(SWEEP_TOOL)
    with captured_log() as log:
        code = tool.main(sweep_args(sweep, sweep['work_dir']))
    assert code == 0, log.getvalue()
    assert 'evaluating eurosat/final/seed44' in log.getvalue()
    assert 'training ' not in log.getvalue()
    assert os.stat(checkpoint).st_mtime_ns == ckpt_mtime
    with open(osp.join(run_dir, 'sweep_eval_metrics.json')) as f:
        assert json.load(f)['accuracy/top1'] == pytest.approx(score)
    with open(osp.join(run_dir, 'sweep_result.json')) as f:
        assert json.load(f)['score'] == pytest.approx(score)
    after = snapshot(sweep['work_dir'])
    assert {p: after[p] for p in others} == others
    with open(osp.join(sweep['work_dir'], 'eurosat',
                       'sweep_summary.json')) as f:
        assert json.load(f)['test_top1'][1] == pytest.approx(score)


def test_dry_run_lists_the_grid(setup, tmp_path):
    work_dir = str(tmp_path / 'dry')
    tool = load_tool(SWEEP_TOOL)
    with captured_log() as log:
        assert tool.main(sweep_args(setup, work_dir, '--dry-run')) == 0
    out = log.getvalue()
    for task in TASKS:
        for name in GRID_NAMES:
            assert f'{task}/grid/{name}: ' in out
            assert f'--work-dir {work_dir}/{task}/grid/{name}' in out
        assert (f'[{task}] seeds [42, 44] on train800val200/test: planned '
                'once the grid has finished') in out
    assert 'base lr 50 -> lr 0.78125, wd 0.01' in out
    assert 'base lr 0.05 -> lr 0.00078125, wd 0' in out
    assert not osp.exists(work_dir)


def test_slurm_array_names_every_run(setup, tmp_path):
    tool = load_tool(SWEEP_TOOL)
    work_dir = str(tmp_path / 'slurm_sweep')
    with captured_log() as log:
        assert tool.main(
            sweep_args(setup, work_dir, '--slurm', '--slurm-partition',
                       'gpu', '--slurm-args=--time=01:00:00',
                       '--slurm-args=--mem=8G')) == 0
    scripts = sorted(glob.glob(osp.join(work_dir, 'slurm', '*.sh')))
    assert len(scripts) == 1
    with open(scripts[0]) as f:
        script = f.read()
    with open(scripts[0][:-3] + '.txt') as f:
        commands = f.read().splitlines()
    assert '#SBATCH --array=0-7' in script
    assert '#SBATCH --partition=gpu' in script
    assert '#SBATCH --time=01:00:00' in script
    assert '#SBATCH --mem=8G' in script
    assert len(commands) == 8
    for task in TASKS:
        for name in GRID_NAMES:
            assert f'{task}/grid/{name}' in script
            line = next(c for c in commands
                        if f'--work-dir {work_dir}/{task}/grid/{name} ' in c)
            assert 'tools/train.py' in line and '--resume auto' in line
    assert 'sbatch ' + scripts[0] in log.getvalue()
    assert 'run this same tools/sweep.py command again' in log.getvalue()

    # Array task i runs line i + 1 (the command echoed instead of run).
    dry = str(tmp_path / 'echo.sh')
    with open(dry, 'w') as f:
        f.write(script.replace('eval "${CMD}"', 'printf "%s" "${CMD}"'))
    for index in (0, 5):
        proc = subprocess.run(['bash', dry],
                              env=dict(os.environ,
                                       SLURM_ARRAY_TASK_ID=str(index)),
                              capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.endswith(commands[index])


def test_slurm_continues_with_the_seed_phase(sweep, tmp_path):
    """Once the grid has finished (here: copied from the local sweep), the
    next --slurm call writes the seed runs with each task's best pair."""
    tool = load_tool(SWEEP_TOOL)
    work_dir = str(tmp_path / 'slurm_sweep')
    for task in TASKS:
        shutil.copytree(
            osp.join(sweep['work_dir'], task, 'grid'),
            osp.join(work_dir, task, 'grid'))
    assert tool.main(sweep_args(sweep, work_dir, '--slurm')) == 0
    scripts = glob.glob(osp.join(work_dir, 'slurm', '*.sh'))
    assert len(scripts) == 1
    with open(scripts[0]) as f:
        assert f'#SBATCH --array=0-{len(TASKS) * len(SEEDS) - 1}' in f.read()
    with open(scripts[0][:-3] + '.txt') as f:
        commands = f.read().splitlines()
    assert len(commands) == len(TASKS) * len(SEEDS)
    for task in TASKS:
        with open(osp.join(sweep['work_dir'], task,
                           'sweep_summary.json')) as f:
            best = json.load(f)['best']
        for seed in SEEDS:
            line = next(c for c in commands
                        if f'{task}/final/seed{seed} ' in c)
            assert f'optim_wrapper.optimizer.lr={best["lr"]!r}' in line
            assert (f'optim_wrapper.optimizer.weight_decay='
                    f'{best["weight_decay"]!r}') in line
            assert 'train_dataloader.dataset.split=train800val200' in line
            assert f'randomness.seed={seed}' in line
