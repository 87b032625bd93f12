"""The sweep's bookkeeping with a stand-in for tools/train.py.

The stand-in writes what mmengine writes (a timestamped scalars.json with the
final validation, epoch checkpoints, last_checkpoint) with a score that is a
known function of (lr, wd, seed), and records every call, so these tests
check the choice of the best pair, resuming, failures and reruns in a
fraction of a second per run.
"""
import json
import math
import os
import os.path as osp
import shutil
import sys

import pytest

from vapt_mm.protocol import Sweep

FAKE_TRAIN = r'''
import json, os, sys
args = sys.argv[1:]
work_dir = args[args.index('--work-dir') + 1]
opts = dict(o.split('=', 1) for o in args[args.index('--cfg-options') + 1:])
lr = float(opts['optim_wrapper.optimizer.lr'])
wd = float(opts['optim_wrapper.optimizer.weight_decay'])
seed = int(opts['randomness.seed'])
epochs = int(opts['train_cfg.val_interval'])
with open(os.environ['FAKE_CALLS'], 'a') as f:
    f.write(json.dumps(dict(work_dir=work_dir, resume='--resume' in args,
                            lr=lr, wd=wd, seed=seed,
                            train=opts['train_dataloader.dataset.split'],
                            val=opts['val_dataloader.dataset.split'])) + '\n')
if os.environ.get('FAKE_FAIL_LR') == repr(lr):
    sys.exit('fake failure for lr %r' % lr)
if os.environ.get('FAKE_DIVERGE_LR') == repr(lr):
    # what FiniteLossHook leaves behind before tools/train.py exits 1
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, 'diverged.json'), 'w') as f:
        json.dump(dict(epoch=1, iter=3, lr=lr, message='diverged'), f)
    sys.exit(1)
score = eval(os.environ['FAKE_SCORE'])
stamp = '20240101_%06d' % len(os.listdir(work_dir) if os.path.isdir(work_dir) else [])
os.makedirs(os.path.join(work_dir, stamp, 'vis_data'))
with open(os.path.join(work_dir, stamp, 'vis_data', 'scalars.json'), 'w') as f:
    f.write(json.dumps({'lr': lr, 'step': 1}) + '\n')
    f.write(json.dumps({'accuracy/top1': score, 'step': epochs}) + '\n')
ckpt = os.path.join(work_dir, 'epoch_%d.pth' % epochs)
open(ckpt, 'wb').close()
with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:
    f.write(ckpt)
'''

# Best at base lr 5 (lr 1.25 at batch 64) and wd 0.001; seeds add a little.
SCORE = '80 - 5 * abs(math.log10(lr / 1.25)) - 1000 * abs(wd - 0.001) ' \
        '+ seed / 1000'

CONFIG = """
model = dict(
    type='PromptedClassifier',
    backbone=dict(type='VisionTransformer',
                  arch=dict(embed_dims=64, num_layers=2, num_heads=4,
                            feedforward_channels=128),
                  img_size=32, patch_size=8),
    neck=dict(type='VPTNeck', num_tokens=4, deep=True),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
loader = dict(batch_size=64, dataset=dict(
    type='VTAB1k', data_root='unused', task='eurosat', split='test'))
train_dataloader = loader
val_dataloader = loader
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1.0))
train_cfg = dict(by_epoch=True, max_epochs=3)
"""

LRS = (10.0, 5.0, 1.0)
WDS = (0.01, 0.001)
SEEDS = (42, 44)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    script = tmp_path / 'fake_train.py'
    script.write_text('import math\n' + FAKE_TRAIN)
    config = tmp_path / 'cfg.py'
    config.write_text(CONFIG)
    calls = tmp_path / 'calls.jsonl'
    monkeypatch.setenv('FAKE_CALLS', str(calls))
    monkeypatch.setenv('FAKE_SCORE', SCORE)
    monkeypatch.delenv('FAKE_FAIL_LR', raising=False)
    monkeypatch.delenv('FAKE_DIVERGE_LR', raising=False)

    def make(**kwargs):
        return Sweep(str(config), str(tmp_path / 'sweep'),
                     train_script=str(script), test_script='unused',
                     base_lrs=LRS, weight_decays=WDS, seeds=SEEDS,
                     python=sys.executable, **kwargs)

    def read_calls():
        if not calls.exists():
            return []
        lines = calls.read_text().splitlines()
        calls.write_text('')
        return [json.loads(line) for line in lines]

    return dict(make=make, calls=read_calls, root=str(tmp_path / 'sweep'))


def score(lr, wd, seed):
    return eval(SCORE, dict(math=math, lr=lr, wd=wd, seed=seed))


def load_summary(root, task='eurosat'):
    with open(osp.join(root, task, 'sweep_summary.json')) as f:
        return json.load(f)


def test_grid_then_seeds_with_the_best_pair(fake):
    assert fake['make']().run_local(num_slots=2)
    calls = fake['calls']()
    grid = [c for c in calls if c['train'] == 'train800']
    final = [c for c in calls if c['train'] == 'train800val200']
    assert len(grid) == 6 and len(final) == 2
    assert all(c['val'] == 'val200' for c in grid)
    assert all(c['val'] == 'test' for c in final)
    assert {(c['lr'], c['wd']) for c in final} == {(5.0 * 64 / 256, 0.001)}
    assert sorted(c['seed'] for c in final) == [42, 44]
    assert not any(c['resume'] for c in calls)

    summary = load_summary(fake['root'])
    assert summary['complete'] and summary['method'] == 'VPT-deep'
    assert summary['best'] == dict(base_lr=5.0, lr=1.25, weight_decay=0.001,
                                   val_top1=pytest.approx(
                                       score(1.25, 0.001, 42)))
    expected = [score(1.25, 0.001, s) for s in SEEDS]
    assert summary['test_top1'] == pytest.approx(expected)
    # deep prompts: 2 blocks x 4 tokens x 64 + head 64 * 10 + 10
    assert summary['params']['trainable'] == 2 * 4 * 64 + 650

    # everything is scored: a second call starts nothing
    assert fake['make']().run_local()
    assert fake['calls']() == []


def test_a_diverged_grid_run_is_a_finished_losing_run(fake, monkeypatch):
    # The best lr (base 5) diverges: it scores 0 and the next best pair
    # wins; the sweep completes instead of waiting for a rerun.
    monkeypatch.setenv('FAKE_DIVERGE_LR', repr(5.0 * 64 / 256))
    assert fake['make']().run_local()
    summary = load_summary(fake['root'])
    assert summary['complete']
    scores = {(g['base_lr'], g['weight_decay']): g['val_top1']
              for g in summary['grid']}
    assert scores[(5.0, 0.001)] == 0.0 and scores[(5.0, 0.01)] == 0.0
    assert summary['best']['base_lr'] != 5.0
    assert summary['best']['weight_decay'] == 0.001


def test_failed_grid_run_blocks_the_seeds_until_it_succeeds(
        fake, monkeypatch):
    monkeypatch.setenv('FAKE_FAIL_LR', repr(10.0 * 64 / 256))
    assert not fake['make']().run_local()
    calls = fake['calls']()
    assert len(calls) == 6  # the whole grid was tried, no seed run
    assert all(c['train'] == 'train800' for c in calls)
    log = osp.join(fake['root'], 'eurosat', 'grid', 'lr10_wd0.01',
                   'sweep_train.log')
    with open(log) as f:
        assert 'fake failure for lr 2.5' in f.read()
    summary = load_summary(fake['root'])
    assert not summary['complete'] and summary['best'] is None
    states = {(g['base_lr'], g['weight_decay']): g['state']
              for g in summary['grid']}
    assert states[(10.0, 0.01)] == 'new' and states[(5.0, 0.01)] == 'done'

    monkeypatch.delenv('FAKE_FAIL_LR')
    assert fake['make']().run_local()
    calls = fake['calls']()
    # only the two failed runs are retried, then the seeds
    assert sorted((c['lr'], c['wd']) for c in calls
                  if c['train'] == 'train800') == [(2.5, 0.001), (2.5, 0.01)]
    assert len([c for c in calls if c['train'] == 'train800val200']) == 2


def test_interrupted_run_is_resumed(fake):
    run_dir = osp.join(fake['root'], 'eurosat', 'grid', 'lr1_wd0.001')
    os.makedirs(run_dir)
    with open(osp.join(run_dir, 'epoch_1.pth'), 'wb'):
        pass
    with open(osp.join(run_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(run_dir, 'epoch_1.pth'))
    sweep = fake['make']()
    assert sweep.plan_task('eurosat').grid[5][1].state == 'resume'
    assert sweep.run_local()
    resumed = [c for c in fake['calls']() if c['resume']]
    assert [c['work_dir'] for c in resumed] == [run_dir]


def test_slurm_mode_lists_only_unscored_runs(fake):
    sweep = fake['make']()
    assert sweep.run_local()
    fake['calls']()
    # one seed run lost its result: only it goes into the array
    run_dir = osp.join(fake['root'], 'eurosat', 'final', 'seed44')
    for name in os.listdir(run_dir):
        path = osp.join(run_dir, name)
        if osp.isdir(path):
            shutil.rmtree(path)
        elif name in ('sweep_result.json', 'last_checkpoint'):
            os.remove(path)
    script = fake['make']().write_slurm(stamp='again')
    with open(script[:-3] + '.txt') as f:
        lines = f.read().splitlines()
    assert len(lines) == 1
    assert f'--work-dir {run_dir} --resume auto' in lines[0]
    assert fake['calls']() == []
    # with everything scored, no script is written
    assert fake['make']().run_local()
    assert fake['make']().write_slurm() is None


def test_one_config_per_task_each_with_its_batch(fake, tmp_path):
    """Per-task configs (as under configs/vpt/): each task trains with its
    own config, and its batch size scales its learning rates."""
    dtd = tmp_path / 'dtd.py'
    dtd.write_text(CONFIG.replace("task='eurosat'", "task='dtd'").replace(
        'batch_size=64', 'batch_size=128'))
    sweep = Sweep([str(dtd), str(tmp_path / 'cfg.py')],
                  str(tmp_path / 'sweep'), train_script='unused',
                  test_script='unused', base_lrs=[10.0], weight_decays=[0.0],
                  seeds=[42])
    assert sweep.tasks == ['dtd', 'eurosat']  # VTAB-1k order
    assert sweep.grid_runs('dtd')[0].lr == 10.0 * 128 / 256
    assert sweep.grid_runs('eurosat')[0].lr == 10.0 * 64 / 256
    assert sweep.train_cmd(sweep.grid_runs('dtd')[0], False)[2] == str(dtd)
    assert not any('dataset.task' in o
                   for o in sweep.grid_runs('dtd')[0].cfg_options)

    with pytest.raises(ValueError, match="both train task 'eurosat'"):
        Sweep([str(tmp_path / 'cfg.py')] * 2, 'w', 'unused', 'unused')
    with pytest.raises(ValueError, match='--tasks uses one config as a '
                       'template for every task; got 2 configs'):
        Sweep([str(dtd), str(tmp_path / 'cfg.py')], 'w', 'unused', 'unused',
              tasks=['all'])
