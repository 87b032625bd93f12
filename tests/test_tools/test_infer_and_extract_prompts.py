"""tools/model_converters/extract_prompts.py writes the prompt file of a
training checkpoint, and tools/infer.py on a folder gives tools/test.py's
predictions, from the checkpoint or from the prompt file."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from test_train_helpers import (TASK, assert_ok, load_state_dict, load_tool,
                                run_tool, trainable_keys, write_tiny_config,
                                write_tiny_pretrained, write_tiny_vtab1k)

from vapt_mm.apis import read_prompt_file
from vapt_mm.utils.user_errors import (CheckpointError, DataError,
                                       MissingFileError)


infer_tool = load_tool('infer.py', 'vapt_mm_tools_infer')
test_tool = load_tool('test.py', 'vapt_mm_tools_test_prompt_file')
extract_tool = load_tool('model_converters/extract_prompts.py',
                         'vapt_mm_tools_extract_prompts')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One epoch of tiny VAPT (trainable-only checkpoint), its prompt file
    and tools/test.py's predictions on the test split."""
    root = tmp_path_factory.mktemp('infer')
    data_root = str(root / 'vtab-1k')
    lists = write_tiny_vtab1k(data_root)
    pretrained = write_tiny_pretrained(str(root / 'vit.pth'))
    config = write_tiny_config(
        str(root / 'vapt.py'), data_root, pretrained, max_epochs=1)
    work_dir = str(root / 'work')
    assert_ok(run_tool('train.py', [config, '--work-dir', work_dir],
                       cwd=str(root)))
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    preds = str(root / 'preds.pkl')
    assert_ok(
        run_tool('test.py', [
            config, checkpoint, '--work-dir',
            str(root / 'test'), '--out', preds
        ],
                 cwd=str(root)))
    with open(preds, 'rb') as f:
        dumped = pickle.load(f)
    test_images = [osp.join(data_root, TASK, rel) for rel, _ in lists['test']]
    prompts = str(root / 'eurosat.safetensors')
    extract_tool.main([checkpoint, prompts])
    return dict(
        root=root,
        data_root=data_root,
        config=config,
        checkpoint=checkpoint,
        prompts=prompts,
        test_scores={
            image: d['pred_score'].numpy()
            for image, d in zip(test_images, dumped)
        })


def test_extract_prompts_writes_the_checkpoint_s_trained_tensors(trained):
    tensors, header = read_prompt_file(trained['prompts'])
    state = load_state_dict(trained['checkpoint'])
    assert sorted(tensors) == trainable_keys(state)
    for key, value in tensors.items():
        assert torch.equal(value, state[key]), key
    # VTAB-1k names its classes by their index; the Runner stored them
    assert header['classes'] == [str(i) for i in range(10)]
    assert header['structure']['neck'] == 'VAPTNeck'
    assert header['source'] == 'epoch_1.pth'


def test_extract_prompts_command_line(trained, tmp_path):
    out = str(tmp_path / 'again.safetensors')
    proc = run_tool(osp.join('model_converters', 'extract_prompts.py'),
                    [trained['checkpoint'], out], cwd=str(tmp_path))
    assert_ok(proc)
    assert f'Wrote {out} (' in proc.stdout
    assert 'VAPTNeck (num_tokens=4), LinearClsHead with 10 classes' \
        in proc.stdout
    # the same checkpoint gives the same file
    tensors, header = read_prompt_file(out)
    expected_tensors, expected_header = read_prompt_file(trained['prompts'])
    assert header == expected_header
    assert sorted(tensors) == sorted(expected_tensors)
    assert all(torch.equal(v, expected_tensors[k]) for k, v in tensors.items())


def _infer_scores(results, num_classes=10):
    """image -> the full score vector, from a --topk num_classes run."""
    scores = {}
    for result in results:
        vector = np.zeros(num_classes, dtype=np.float32)
        for entry in result['topk']:
            vector[entry['label']] = entry['score']
        scores[result['image']] = vector
    return scores


def test_infer_on_a_folder_equals_test_py(trained, tmp_path):
    folder = osp.join(trained['data_root'], TASK)
    out = str(tmp_path / 'results.json')
    proc = run_tool('infer.py', [
        trained['config'], trained['prompts'], folder, '--topk', '10',
        '--out', out, '--device', 'cpu'
    ],
                    cwd=str(tmp_path))
    assert_ok(proc)
    with open(out) as f:
        results = json.load(f)
    images = [r['image'] for r in results]
    assert images == sorted(images) and len(images) == 24  # every image
    scores = _infer_scores(results)
    for image, expected in trained['test_scores'].items():
        np.testing.assert_allclose(scores[image], expected, rtol=0,
                                   atol=1e-6)
        best = results[images.index(image)]['topk'][0]
        assert best['label'] == int(expected.argmax())
        assert best['class'] == str(best['label'])
    # printed: one line per image, best label first
    first = next(iter(trained['test_scores']))
    assert f'{first}: {int(trained["test_scores"][first].argmax())} (' \
        in proc.stdout


def test_infer_from_the_checkpoint_equals_the_prompt_file(trained):
    images = sorted(trained['test_scores'])
    results = infer_tool.main([
        trained['config'], trained['checkpoint'], *images, '--topk', '10',
        '--device', 'cpu'
    ])
    scores = _infer_scores(results)
    for image in images:
        np.testing.assert_allclose(scores[image],
                                   trained['test_scores'][image], rtol=0,
                                   atol=1e-6)
    assert all(len(r['topk']) == 10 for r in results)


def test_test_py_tests_a_prompt_file_like_its_checkpoint(trained, tmp_path):
    out = str(tmp_path / 'preds.pkl')
    test_tool.main([
        trained['config'], trained['prompts'], '--work-dir',
        str(tmp_path), '--out', out, '--cfg-options',
        'experiment_name=test_prompt_file'
    ])
    with open(out, 'rb') as f:
        dumped = pickle.load(f)
    scores = np.stack([d['pred_score'].numpy() for d in dumped])
    expected = np.stack(list(trained['test_scores'].values()))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)


def test_infer_refuses_missing_inputs_and_empty_folders(trained, tmp_path):
    with pytest.raises(MissingFileError, match='nope.png does not exist'):
        infer_tool.main([
            trained['config'], trained['prompts'],
            str(tmp_path / 'nope.png')
        ])
    with pytest.raises(DataError, match='holds no image file'):
        infer_tool.main(
            [trained['config'], trained['prompts'],
             str(tmp_path)])


def test_infer_refuses_prompts_of_another_backbone(trained, tmp_path):
    other = str(tmp_path / 'other_vit.pth')
    write_tiny_pretrained(other)  # the training backbone, then changed:
    weights = torch.load(other)
    weights['state_dict']['cls_token'] += 1.0
    torch.save(weights, other)
    image = sorted(trained['test_scores'])[0]
    with pytest.raises(CheckpointError, match='other backbone weights'):
        infer_tool.main([
            trained['config'], trained['prompts'], image, '--cfg-options',
            f'model.backbone.init_cfg.checkpoint={other}'
        ])


def test_extract_prompts_refuses_a_config_that_does_not_fit(trained,
                                                            tmp_path):
    other = write_tiny_config(
        str(tmp_path / 'vpt.py'), trained['data_root'],
        str(trained['root'] / 'vit.pth'), neck='vpt-deep')
    with pytest.raises(CheckpointError, match='does not fit the model'):
        extract_tool.main([
            trained['checkpoint'],
            str(tmp_path / 'x.safetensors'), '--config', other
        ])
    assert not (tmp_path / 'x.safetensors').exists()


def test_train_resume_refuses_a_prompt_file_and_load_from_takes_it(
        trained, tmp_path):
    # --resume needs epoch and optimizer state, which a prompt file lacks
    proc = run_tool('train.py', [
        trained['config'], '--work-dir',
        str(tmp_path / 'resume'), '--resume', trained['prompts']
    ],
                    cwd=str(tmp_path))
    assert proc.returncode == 1
    assert f'--resume {trained["prompts"]}: a prompt file' in proc.stderr
    assert f'load_from={trained["prompts"]}' in proc.stderr
    assert 'Traceback' not in proc.stderr
    # load_from starts a new run from the prompt file's weights: with lr 0
    # its first checkpoint holds exactly the file's tensors
    work_dir = str(tmp_path / 'from_prompts')
    assert_ok(
        run_tool('train.py', [
            trained['config'], '--work-dir', work_dir, '--cfg-options',
            f'load_from={trained["prompts"]}',
            'optim_wrapper.optimizer.lr=0'
        ],
                 cwd=str(tmp_path)))
    tensors, _ = read_prompt_file(trained['prompts'])
    state = load_state_dict(osp.join(work_dir, 'epoch_1.pth'))
    for key, value in tensors.items():
        assert torch.equal(state[key], value), key
