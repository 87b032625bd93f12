"""Serve prompt files as tasks of one frozen backbone over HTTP (LitServe).

One ``MultiTaskPromptedClassifier`` holds the base config's pretrained
backbone (and its data preprocessor and test pipeline); every prompt file
becomes a task, named ``NAME`` or after the file's stem. Requests for
different tasks are batched together and run through the backbone once.
The model is first built here, so a missing file, a duplicate name or a
prompt file of other backbone weights stops the command with a short
message; each LitServe worker then builds it again on its device.

Endpoints: ``POST /predict`` with ``{"task": NAME, "image": BASE64}``
answers ``{"task": NAME, "topk": [{"label": 3, "class": "Forest",
"score": 0.97}, ...]}``; ``GET /tasks`` lists the tasks; LitServe adds
``GET /health`` and ``GET /info``. Needs ``pip install -e ".[serve]"``.

Example:
    Two tasks on the ViT-B/16 of the VAPT configs, on port 8000::

        python tools/serve.py configs/vapt/vit-b16_vtab-eurosat.py \\
            eurosat.safetensors pets=pets_v2.safetensors --port 8000

    See docs/serving.md ("The server") for the API, errors and replicas.
"""
import argparse
import gc
import sys
from typing import List, Optional

from mmengine.config import DictAction

from vapt_mm.utils.user_errors import add_debug_argument, run_tool

HOSTS = ('127.0.0.1', '0.0.0.0', '::')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Example:
        >>> parse_args(['cfg.py', 'a.safetensors']).max_batch_size
        16
    """
    parser = argparse.ArgumentParser(
        description='Serve prompt files as tasks of one frozen backbone '
        'over HTTP, batching requests across tasks (LitServe)')
    parser.add_argument(
        'config', help='base config: its backbone (pretrained file), data '
        'preprocessor and test pipeline are shared by all tasks')
    parser.add_argument(
        'prompt_files',
        nargs='+',
        metavar='[NAME=]PROMPT_FILE',
        help='a task per prompt file (.safetensors), named NAME or after '
        'the file\'s stem')
    parser.add_argument('--port', type=int, default=8000,
                        help='port (default 8000)')
    parser.add_argument(
        '--host',
        default='127.0.0.1',
        choices=HOSTS,
        help='interface to listen on: 127.0.0.1 (this machine only, the '
        'default), 0.0.0.0 or :: (every interface)')
    parser.add_argument(
        '--max-batch-size',
        type=int,
        default=16,
        help='most requests per model call, whatever their tasks (default '
        '16)')
    parser.add_argument(
        '--batch-timeout-ms',
        type=float,
        default=10.0,
        help='how long a batch waits to fill before the model runs, in '
        'milliseconds (default 10)')
    parser.add_argument(
        '--max-upload-mb',
        type=float,
        default=10.0,
        help='largest request body (JSON with the base64 image), in MiB; '
        'larger ones are answered 413 (default 10)')
    parser.add_argument(
        '--topk', type=int, default=5, help='labels per answer (default 5)')
    parser.add_argument(
        '--device',
        default='auto',
        help="'auto' (every GPU if there is one, else the CPU; the "
        "default), 'cpu', 'cuda', 'cuda:0' or 'cuda:0,1'")
    parser.add_argument(
        '--workers-per-device',
        type=int,
        default=1,
        help='model replicas (LitServe worker processes) per device '
        '(default 1)')
    parser.add_argument(
        '--timeout',
        type=float,
        default=30.0,
        help='seconds a request may wait for a free worker before it is '
        'answered 504 (default 30)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the base config, as key=value pairs')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if not 1024 <= args.port <= 65535:
        parser.error('--port must be between 1024 and 65535')
    for option in ('max_batch_size', 'topk', 'workers_per_device'):
        if getattr(args, option) < 1:
            parser.error(f'--{option.replace("_", "-")} must be at least 1')
    if args.batch_timeout_ms < 0:
        parser.error('--batch-timeout-ms must be 0 or more')
    for option in ('max_upload_mb', 'timeout'):
        if getattr(args, option) <= 0:
            parser.error(f'--{option.replace("_", "-")} must be positive')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Check the tasks, build the model once, then serve until stopped.

    Example:
        >>> main(['configs/vapt/vit-b16_vtab-eurosat.py',
        ...       'eurosat.safetensors'])  # doctest: +SKIP
    """
    args = parse_args(argv)
    from vapt_mm.serving import MultiTaskPredictor, parse_task_specs
    tasks = parse_task_specs(args.prompt_files)
    # needs litserve: a MissingPackageError names the install command
    from vapt_mm.serving.lit_api import (MultiTaskClassifierAPI,
                                         build_server, device_placement)
    device_placement(args.device)  # refuse a bad --device before building
    # Built here on the CPU to check everything and list the tasks; the
    # workers build their own copy on their device.
    predictor = MultiTaskPredictor.build(args.config, args.cfg_options,
                                         tasks, args.topk, 'cpu')
    tasks_info = predictor.describe_tasks()
    for task in tasks_info:
        print(f"task {task['name']}: {task['neck']} "
              f"(num_tokens={task['num_tokens']}), "
              f"{task['num_classes']} classes")
    del predictor
    gc.collect()
    api = MultiTaskClassifierAPI(
        args.config,
        args.cfg_options,
        tasks,
        topk=args.topk,
        max_batch_size=args.max_batch_size,
        batch_timeout=args.batch_timeout_ms / 1000)
    server = build_server(
        api,
        tasks_info,
        device=args.device,
        workers_per_device=args.workers_per_device,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        timeout=args.timeout)
    server.run(host=args.host, port=args.port, generate_client_file=False)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'serve.py'))
