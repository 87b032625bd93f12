"""tools/serve.py: prompt files of three necks served by one LitServe
server, batched across tasks, answering what each task's own single-task
model (tools/infer.py's inferencer) answers; bad requests are refused
alone and the server keeps serving; bad tasks stop the command with a short
message.

The server runs as a real process (``python tools/serve.py``) on a free
port; the load test sends 200 concurrent requests with httpx and prints
p50/p95 latency and throughput (shown with ``pytest -s``).
"""
import base64
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image
from test_tool_errors import run_main
from test_train_helpers import (REPO_ROOT, TOOLS_DIR, free_port, load_tool,
                                write_tiny_config, write_tiny_pretrained)

from vapt_mm.apis import save_prompt_file
from vapt_mm.serving import MultiTaskPredictor, TaskSpec, top_k

SERVE = osp.join(TOOLS_DIR, 'serve.py')
TOPK = 10
MAX_UPLOAD_MB = 1
NUM_REQUESTS = 200

# name -> neck, class count, class names, prompt file name; served in this
# order, 'deep' as deep=deep_v2.safetensors (a NAME= argument)
TASKS = {
    'shallow':
    dict(neck=dict(type='VPTNeck', num_tokens=2, deep=False, dropout=0.0),
         num_classes=3, classes=['cat', 'dog', 'bird'],
         file='shallow.safetensors'),
    'deep':
    dict(neck=dict(type='VPTNeck', num_tokens=6, deep=True, dropout=0.0),
         num_classes=10, classes=[f'class_{i}' for i in range(10)],
         file='deep_v2.safetensors'),
    'vapt':
    dict(neck=dict(type='VAPTNeck', num_tokens=4, mlp_dropout=0.0,
                   conv_dropout=0.0),
         num_classes=7, classes=None, file='vapt.safetensors'),
}
BATCH_LINE = re.compile(r'batch of (\d+): ([^\n]*)')

infer_tool = load_tool('infer.py', 'vapt_mm_tools_infer_for_serve')


def _write_prompt_file(root, name, task, pretrained, seed):
    """A task's config and its prompt file: the pretrained backbone with a
    randomly perturbed neck and head (a stand-in for training)."""
    from mmpretrain.registry import MODELS
    config = write_tiny_config(
        str(root / f'{name}.py'), str(root / 'unused_data'), pretrained,
        extra=f"model['neck'] = {task['neck']!r}\n"
        f"model['head']['num_classes'] = {task['num_classes']}\n")
    init_default_scope('mmpretrain')
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in [*model.neck.parameters(), *model.head.parameters()]:
            param.add_(torch.randn_like(param) * 0.5)
    path = str(root / task['file'])
    save_prompt_file(model.eval(), path, classes=task['classes'],
                     config=config)
    return config, path


def _write_images(root, count=12):
    """PNG files of several sizes (the test pipeline resizes them)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        height, width = rng.integers(20, 64, size=2)
        pixels = rng.integers(0, 256, size=(height, width, 3),
                              dtype=np.uint8)
        path = str(root / f'img_{i:02d}.png')
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _b64(path):
    with open(path, 'rb') as f:
        return base64.b64encode(f.read()).decode('ascii')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Base config, pretrained backbone, prompt files, images, and every
    image's scores under every task from tools/infer.py's inferencer (the
    single-task PromptedClassifier of the prompt file)."""
    root = tmp_path_factory.mktemp('serve')
    pretrained = write_tiny_pretrained(str(root / 'vit.pth'))
    base = write_tiny_config(str(root / 'base.py'),
                             str(root / 'unused_data'), pretrained)
    images = _write_images(root)
    configs, prompts, expected = {}, {}, {}
    for seed, (name, task) in enumerate(TASKS.items()):
        configs[name], prompts[name] = _write_prompt_file(
            root, name, task, pretrained, seed)
        inferencer = infer_tool.build_inferencer(configs[name],
                                                 prompts[name], 'cpu', None)
        assert inferencer.classes == task['classes']
        predictions = inferencer(images, batch_size=4)
        expected[name] = [p['pred_scores'] for p in predictions]
    args = [base]
    for name, task in TASKS.items():
        args.append(prompts[name] if name == osp.splitext(task['file'])[0]
                    else f'{name}={prompts[name]}')
    return dict(root=root, base=base, pretrained=pretrained, args=args,
                prompts=prompts, images=images,
                b64=[_b64(p) for p in images], expected=expected)


def _assert_answer(answer, files, task, image):
    """An answer equals the offline top-k of its image and task."""
    expected = files['expected'][task][image]
    best = top_k(expected, TOPK, TASKS[task]['classes'])
    assert answer['task'] == task
    assert [e['label'] for e in answer['topk']] == [
        e['label'] for e in best]
    assert [e.get('class') for e in answer['topk']] == [
        e.get('class') for e in best]
    np.testing.assert_allclose([e['score'] for e in answer['topk']],
                               [e['score'] for e in best], rtol=0,
                               atol=1e-5)


def test_predictor_answers_a_mixed_batch_like_each_task_s_model(files):
    """The server's steps in this process: one batch of all tasks with
    refused requests among them."""
    tasks = [TaskSpec(name, files['prompts'][name]) for name in TASKS]
    predictor = MultiTaskPredictor.build(files['base'], None, tasks, TOPK)
    names = list(TASKS)
    requests = [dict(task=names[i % 3], image=files['b64'][i])
                for i in range(len(files['images']))]
    requests[4] = dict(task='nope', image=files['b64'][4])
    requests[7] = dict(task='deep', image='bm90IGFuIGltYWdl')  # not an image
    answers = predictor(requests)
    assert [status for status, _ in answers] == [
        422 if i in (4, 7) else 200 for i in range(len(requests))]
    for i, (status, answer) in enumerate(answers):
        if status == 200:
            _assert_answer(answer, files, requests[i]['task'], i)
    assert answers[4][1]['known_tasks'] == names


@pytest.fixture(scope='module')
def server(files):
    """tools/serve.py on a free port; its output goes to server.log."""
    port = free_port()
    log_path = str(files['root'] / 'server.log')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO_ROOT, env.get('PYTHONPATH', '')])
    env.setdefault('OMP_NUM_THREADS', '1')
    cmd = [
        sys.executable, SERVE, *files['args'], '--port',
        str(port), '--host', '127.0.0.1', '--device', 'cpu', '--topk',
        str(TOPK), '--max-batch-size', '16', '--batch-timeout-ms', '20',
        '--max-upload-mb',
        str(MAX_UPLOAD_MB)
    ]
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=str(files['root']), env=env,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f'http://127.0.0.1:{port}'

    def log_text():
        with open(log_path) as f:
            return f.read()

    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f'serve.py exited with {proc.returncode}:\n'
                            f'{log_text()[-6000:]}')
            try:
                if httpx.get(url + '/health', timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail('serve.py not ready after 120 s:\n'
                            f'{log_text()[-6000:]}')
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield dict(client=client, url=url, log=log_text)
    finally:
        # Ctrl+C for LitServe's graceful shutdown, then whatever is left
        # of its process group (workers, API server processes)
        try:
            os.kill(proc.pid, signal.SIGINT)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _batches(log_text):
    """(size, {task: count}) of every batch line."""
    batches = []
    for size, mix in BATCH_LINE.findall(log_text):
        counts = dict(
            (name, int(n)) for name, n in re.findall(r'([\w-]+)=(\d+)', mix))
        batches.append((int(size), counts))
    return batches


def test_load_200_concurrent_requests_across_three_tasks(files, server):
    names = list(TASKS)
    log_start = len(server['log']())
    start_gate = threading.Barrier(50)

    def post(i):
        task, image = names[i % 3], (i // 3) % len(files['images'])
        if i < 50:
            start_gate.wait()
        began = time.perf_counter()
        response = client.post(
            '/predict', json=dict(task=task, image=files['b64'][image]))
        return task, image, response, time.perf_counter() - began

    limits = httpx.Limits(max_connections=NUM_REQUESTS)
    with httpx.Client(base_url=server['url'], timeout=60,
                      limits=limits) as client:
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(post, range(NUM_REQUESTS)))
        wall = time.perf_counter() - began

    assert len(results) == NUM_REQUESTS
    for task, image, response, _ in results:
        assert response.status_code == 200, response.text
        _assert_answer(response.json(), files, task, image)
    latencies = np.array([r[3] for r in results]) * 1000
    batches = _batches(server['log']()[log_start:])
    # every request went through exactly one model call
    assert sum(size for size, _ in batches) == NUM_REQUESTS
    assert all(sum(counts.values()) == size for size, counts in batches)
    mixed = [b for b in batches if len(b[1]) > 1]
    assert mixed, f'no batch mixed tasks: {batches}'
    print(f'\nserve.py load test: {NUM_REQUESTS} requests, 3 tasks, 50 '
          f'client threads; {len(batches)} batches (largest '
          f'{max(s for s, _ in batches)}, {len(mixed)} mixing tasks); '
          f'latency p50 {np.percentile(latencies, 50):.1f} ms, p95 '
          f'{np.percentile(latencies, 95):.1f} ms; throughput '
          f'{NUM_REQUESTS / wall:.1f} requests/s ({wall:.2f} s)')


def test_tasks_endpoint_lists_the_tasks(server):
    answer = server['client'].get('/tasks')
    assert answer.status_code == 200
    tasks = answer.json()['tasks']
    assert [t['name'] for t in tasks] == list(TASKS)
    for entry, (name, task) in zip(tasks, TASKS.items()):
        assert entry['num_classes'] == task['num_classes']
        assert entry['neck'] == task['neck']['type']
        assert entry['num_tokens'] == task['neck']['num_tokens']
        assert entry['deep'] == task['neck'].get('deep')
        assert entry['classes'] == task['classes']
    info = server['client'].get('/info').json()
    assert info['model'] == dict(tasks=list(TASKS))


def _bad_requests(files):
    """name -> (how to post it, expected status, text the answer holds)."""
    big = 'A' * (MAX_UPLOAD_MB * 2**20 + 1000)
    not_image = base64.b64encode(b'just some text').decode()
    return {
        'unknown task': (dict(json=dict(task='nope', image=files['b64'][0])),
                         422, 'nope'),
        'invalid base64': (dict(json=dict(task='deep', image='@@@')), 400,
                           'not valid base64'),
        'not an image': (dict(json=dict(task='deep', image=not_image)), 422,
                         'no image'),
        'missing field': (dict(json=dict(task='deep')), 422, 'image'),
        'not json': (dict(content=b'{"task": "deep", ',
                          headers={'Content-Type': 'application/json'}), 422,
                     'JSON'),
        'oversized': (dict(json=dict(task='deep', image=big)), 413,
                      'too large'),
    }


@pytest.mark.parametrize('case', sorted(_bad_requests(dict(b64=['x']))))
def test_a_bad_request_is_refused_and_the_server_keeps_serving(
        files, server, case):
    how, status, text = _bad_requests(files)[case]
    answer = server['client'].post('/predict', **how)
    assert answer.status_code == status, answer.text
    assert text in answer.text
    assert 'detail' in answer.json()
    if case == 'unknown task':
        assert answer.json()['known_tasks'] == list(TASKS)
    good = server['client'].post(
        '/predict', json=dict(task='vapt', image=files['b64'][3]))
    assert good.status_code == 200, good.text
    _assert_answer(good.json(), files, 'vapt', 3)


def test_bad_requests_in_a_batch_do_not_fail_the_others(files, server):
    """Good and refused requests sent at once share batches; each is
    answered on its own."""
    names = list(TASKS)
    shared = []
    for _ in range(5):  # until one batch held both kinds
        log_start = len(server['log']())
        gate = threading.Barrier(24)

        def post(i):
            payload = dict(task=names[i % 3], image=files['b64'][i % 12])
            if i % 4 == 1:
                payload['task'] = 'nope'
            gate.wait()
            return i, payload, server['client'].post('/predict',
                                                     json=payload)

        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(post, range(24)))
        for i, payload, answer in results:
            if payload['task'] == 'nope':
                assert answer.status_code == 422, answer.text
            else:
                assert answer.status_code == 200, answer.text
                _assert_answer(answer.json(), files, payload['task'], i % 12)
        shared = [line for line in BATCH_LINE.findall(
            server['log']()[log_start:]) if 'rejected' in line[1]
            and '=' in line[1]]
        if shared:
            break
    assert shared, 'no batch held accepted and refused requests together'


def _other_backbone(files, tmp_path):
    other = str(tmp_path / 'other_vit.pth')
    weights = torch.load(files['pretrained'])
    weights['state_dict']['cls_token'] += 1.0
    torch.save(weights, other)
    return [f'model.backbone.init_cfg.checkpoint={other}']


@pytest.mark.parametrize('case', [
    'duplicate names', 'missing prompt file', 'other backbone',
    'litserve missing'
])
def test_task_errors_stop_with_a_short_message(monkeypatch, capsys, files,
                                               tmp_path, case):
    base, shallow = files['base'], files['prompts']['shallow']
    if case == 'duplicate names':
        argv = [base, shallow, f'shallow={files["prompts"]["vapt"]}']
        message = "Two prompt files would serve the task 'shallow'"
    elif case == 'missing prompt file':
        absent = str(tmp_path / 'absent.safetensors')
        argv = [base, shallow, absent]
        message = f'Prompt file {absent} does not exist'
    elif case == 'other backbone':
        argv = [base, shallow, '--cfg-options',
                *_other_backbone(files, tmp_path)]
        message = 'was trained on other backbone weights'
    else:
        monkeypatch.setitem(sys.modules, 'litserve', None)
        monkeypatch.delitem(sys.modules, 'vapt_mm.serving.lit_api',
                            raising=False)
        argv = [base, shallow]
        message = 'pip install -e ".[serve]"'
    assert run_main(monkeypatch, 'serve.py', argv) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert 'serve.py: error: ' in err
    assert message in err


def test_lit_api_steps_with_and_without_batching(files):
    """The LitAPI methods as LitServe calls them: per request when
    max_batch_size is 1 (no batch/unbatch), else over a batch; a refused
    request becomes a JSONResponse with its status."""
    from vapt_mm.serving.lit_api import MultiTaskClassifierAPI, PredictRequest
    tasks = [TaskSpec(name, files['prompts'][name]) for name in TASKS]
    api = MultiTaskClassifierAPI(files['base'], None, tasks, topk=TOPK,
                                 max_batch_size=4, batch_timeout=0.01)
    api.setup('cpu')
    single = api.decode_request(PredictRequest(task='deep',
                                               image=files['b64'][5]))
    _assert_answer(api.encode_response(api.predict(single)), files, 'deep',
                   5)
    requests = [
        PredictRequest(task='vapt', image=files['b64'][1]),
        PredictRequest(task='deep', image='@@@'),
        PredictRequest(task='shallow', image=files['b64'][2]),
    ]
    outputs = api.unbatch(
        api.predict(api.batch([api.decode_request(r) for r in requests])))
    answers = [api.encode_response(o) for o in outputs]
    _assert_answer(answers[0], files, 'vapt', 1)
    assert answers[1].status_code == 400
    assert b'not valid base64' in answers[1].body
    _assert_answer(answers[2], files, 'shallow', 2)
