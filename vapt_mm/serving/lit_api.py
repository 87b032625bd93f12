"""LitServe glue of ``tools/serve.py``: a ``LitAPI`` over
:class:`~vapt_mm.serving.predictor.MultiTaskPredictor` and its server.

LitServe (``pip install -e ".[serve]"``) runs ``decode_request`` per
request, then ``batch`` / ``predict`` / ``unbatch`` on up to
``max_batch_size`` requests gathered within ``batch_timeout``, whatever
their tasks, then ``encode_response`` per request. An ``HTTPException``
raised in any of these steps answers **every** request of the batch with
it (LitServe 0.2), so a refused request is carried through the batch as a
:class:`~.request_decoding.RequestError` and answered alone with its
status (a ``JSONResponse``). Bodies that are not JSON or lack a field are
answered 422 by FastAPI (the ``PredictRequest`` schema), bodies over
``max_payload_size`` 413 by LitServe's ``MaxSizeMiddleware``, before they
reach a worker.

Importing this module needs LitServe; without it, it raises a
:class:`~vapt_mm.utils.user_errors.MissingPackageError` naming the
install command.
"""
import re
from typing import List, Optional, Sequence, Tuple, Union

from ..utils.user_errors import (ConfigError, MissingPackageError,
                                 user_message)
from .predictor import Decoded, MixedBatch, MultiTaskPredictor, Prediction
from .request_decoding import RequestError
from .task_specs import DOCS, TaskSpec

try:
    import litserve as ls
    from fastapi import Depends
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel
except ImportError as error:
    raise MissingPackageError(
        user_message(
            'tools/serve.py needs LitServe, which is not installed.',
            where=str(error),
            fix='pip install -e ".[serve]"',
            docs=DOCS)) from error

__all__ = [
    'PredictRequest', 'MultiTaskClassifierAPI', 'device_placement',
    'build_server'
]

Devices = Union[str, List[int]]
Output = Union[Prediction, RequestError]


class PredictRequest(BaseModel):
    """The JSON body of ``POST /predict``."""
    task: str
    image: str


class MultiTaskClassifierAPI(ls.LitAPI):
    """Serve the prompt-file tasks of one frozen backbone, batched across
    tasks.

    The model is built in :meth:`setup`, in each LitServe worker process
    (on its device), from the same base config and prompt files.

    Args:
        config (str): The base config file.
        cfg_options (dict, optional): Config overrides.
        tasks (Sequence[TaskSpec]): Task names and prompt files.
        topk (int): Labels per answer.
        max_batch_size (int): Most requests per model call.
        batch_timeout (float): Seconds to wait for a batch to fill.

    Example:
        >>> api = MultiTaskClassifierAPI(
        ...     'configs/vapt/vit-b16_vtab-eurosat.py', None,
        ...     [TaskSpec('eurosat', 'eurosat.safetensors')], topk=5,
        ...     max_batch_size=16, batch_timeout=0.01)
        >>> build_server(api, tasks_info).run(port=8000)  # doctest: +SKIP
    """

    def __init__(self, config: str, cfg_options: Optional[dict],
                 tasks: Sequence[TaskSpec], topk: int, max_batch_size: int,
                 batch_timeout: float) -> None:
        super().__init__(
            max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.config = config
        self.cfg_options = cfg_options
        self.tasks = list(tasks)
        self.topk = topk
        self.predictor: Optional[MultiTaskPredictor] = None

    def setup(self, device: str) -> None:
        """Build the model on ``device`` (``'cpu'``, ``'cuda:0'``, ...)."""
        self.predictor = MultiTaskPredictor.build(self.config,
                                                  self.cfg_options,
                                                  self.tasks, self.topk,
                                                  device)

    # LitServe reads two annotations: decode_request's ``request`` (the
    # body schema FastAPI checks) and encode_response's return (the
    # response class), so the latter has none.
    def decode_request(self, request: PredictRequest) -> Decoded:
        """The request's image tensor, or the error that refuses it."""
        return self.predictor.decode(request.task, request.image)

    def batch(self, inputs: List[Decoded]) -> MixedBatch:
        """Stack the accepted images of the batch, keeping their tasks."""
        return self.predictor.collate(inputs)

    def predict(self, x: Union[MixedBatch, Decoded]) -> Union[list, Output]:
        """One ``model.predict(images, tasks)`` for the whole batch."""
        if isinstance(x, MixedBatch):
            return self.predictor.predict(x)
        # max_batch_size=1: LitServe calls neither batch nor unbatch
        return self.predictor.predict(self.predictor.collate([x]))[0]

    def unbatch(self, output: List[Output]) -> List[Output]:
        """One output per request."""
        return list(output)

    def encode_response(self, output):
        """``{"task", "topk"}``, or the error's JSON with its status."""
        status, body = self.predictor.answer(output)
        if status == 200:
            return body
        return JSONResponse(status_code=status, content=body)


def device_placement(device: str) -> Tuple[str, Devices]:
    """LitServe's ``accelerator`` and ``devices`` for a ``--device``.

    Args:
        device (str): ``'auto'`` (every GPU if there is one, else the
            CPU), ``'cpu'``, ``'cuda'`` (every GPU), ``'cuda:0'`` or
            ``'cuda:0,2'`` (those GPUs), ``'mps'``.

    Returns:
        tuple[str, str | list[int]]: ``(accelerator, devices)``.

    Raises:
        ConfigError: Another value.

    Example:
        >>> device_placement('cuda:0,2')
        ('cuda', [0, 2])
        >>> device_placement('cpu')
        ('cpu', 'auto')
    """
    if device in ('auto', 'cpu', 'cuda', 'mps'):
        return device, 'auto'
    match = re.fullmatch(r'cuda:(\d+(?:,\d+)*)', device)
    if match:
        return 'cuda', [int(i) for i in match.group(1).split(',')]
    raise ConfigError(
        user_message(
            f'Unknown device {device!r}.',
            fix="use auto, cpu, cuda, cuda:0 (or cuda:0,1 for several "
            'GPUs) or mps.',
            docs=DOCS))


def build_server(api: MultiTaskClassifierAPI,
                 tasks_info: List[dict],
                 device: str = 'auto',
                 workers_per_device: int = 1,
                 max_upload_bytes: Optional[int] = None,
                 timeout: float = 30) -> 'ls.LitServer':
    """The LitServer of ``api``, with ``GET /tasks``.

    Args:
        api (MultiTaskClassifierAPI): The API.
        tasks_info (list[dict]): What ``GET /tasks`` answers (under
            ``"tasks"``), see :func:`~.model_builder.describe_tasks`.
        device (str): See :func:`device_placement`. Defaults to 'auto'.
        workers_per_device (int): Model replicas (worker processes) per
            device. Defaults to 1.
        max_upload_bytes (int, optional): Largest request body; larger
            ones are answered 413. Defaults to no limit.
        timeout (float): Seconds a request may wait for a worker before
            it is answered 504. Defaults to 30.

    Returns:
        litserve.LitServer: Call ``run(host=..., port=...)``.

    Example:
        >>> server = build_server(api, tasks_info, device='cpu',
        ...                       max_upload_bytes=10 * 2**20)
        ... # doctest: +SKIP
        >>> server.run(host='127.0.0.1', port=8000)  # doctest: +SKIP
    """
    accelerator, devices = device_placement(device)
    server = ls.LitServer(
        api,
        accelerator=accelerator,
        devices=devices,
        workers_per_device=workers_per_device,
        timeout=timeout,
        max_payload_size=max_upload_bytes,
        model_metadata=dict(tasks=[t['name'] for t in tasks_info]))

    async def tasks() -> dict:
        return dict(tasks=tasks_info)

    server.app.add_api_route(
        '/tasks',
        tasks,
        methods=['GET'],
        dependencies=[Depends(server.setup_auth())])
    return server
