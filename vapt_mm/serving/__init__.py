"""Serve prompt-file tasks of one frozen backbone over HTTP
(``tools/serve.py``, docs/serving.md "The server").

The parts here need no web framework: which prompt file serves which task
(:mod:`.task_specs`), the multi-task model of a base config
(:mod:`.model_builder`), request decoding through the config's test
pipeline (:mod:`.request_decoding`), top-k answers (:mod:`.top_k`), the
batch log (:mod:`.batch_log`) and the steps a server runs
(:mod:`.predictor`). The LitServe glue, :mod:`vapt_mm.serving.lit_api`,
is imported by ``tools/serve.py`` only (it needs ``litserve``).
"""
from .batch_log import log_batch, task_mix
from .model_builder import (ServedModel, build_served_model, describe_tasks,
                            load_base_config)
from .predictor import MixedBatch, MultiTaskPredictor, Prediction
from .request_decoding import (DecodedImage, ImageDecoder, RequestError,
                               inference_pipeline)
from .task_specs import TaskSpec, parse_task_specs
from .top_k import top_k

__all__ = [
    'log_batch', 'task_mix', 'ServedModel', 'build_served_model',
    'describe_tasks', 'load_base_config', 'MixedBatch', 'MultiTaskPredictor',
    'Prediction', 'DecodedImage', 'ImageDecoder', 'RequestError',
    'inference_pipeline', 'TaskSpec', 'parse_task_specs', 'top_k'
]
