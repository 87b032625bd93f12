"""Serve requests of many tasks in shared batches, without any HTTP.

:class:`MultiTaskPredictor` holds the steps a server calls:
:meth:`~MultiTaskPredictor.decode` each request (a refused one becomes a
:class:`~.request_decoding.RequestError` in its place, so it never fails
the others), :meth:`~MultiTaskPredictor.collate` the accepted images of a
batch whatever their tasks, :meth:`~MultiTaskPredictor.predict` them with
**one** ``model.predict(images, tasks)`` (one backbone pass) and turn each
result into its :meth:`~MultiTaskPredictor.answer`. ``tools/serve.py``
runs these steps in LitServe's ``decode_request`` / ``batch`` /
``predict`` / ``encode_response`` (:mod:`vapt_mm.serving.lit_api`).
"""
from typing import (Dict, List, NamedTuple, Optional, Sequence, Tuple,
                    Union)

import numpy as np
import torch

from .batch_log import log_batch
from .model_builder import (ServedModel, build_served_model,
                            describe_tasks, load_base_config)
from .request_decoding import (DecodedImage, ImageDecoder, RequestError,
                               inference_pipeline)
from .task_specs import TaskSpec
from .top_k import top_k

__all__ = ['Prediction', 'MixedBatch', 'MultiTaskPredictor']

Decoded = Union[DecodedImage, RequestError]


class Prediction(NamedTuple):
    """One image's task and class scores (softmax)."""
    task: str
    scores: np.ndarray


class MixedBatch(NamedTuple):
    """The accepted images of a batch, stacked, with their tasks; ``items``
    keeps every request's place (refused ones as their error)."""
    inputs: Optional[torch.Tensor]
    tasks: List[str]
    items: List[Decoded]


class MultiTaskPredictor:
    """Decode, batch and predict requests for the tasks of one model.

    Args:
        served (ServedModel): The model (eval mode, on its device) and each
            task's class names.
        decoder (ImageDecoder): Turns requests into image tensors.
        topk (int): Labels per answer. Defaults to 5.

    Example:
        >>> predictor = MultiTaskPredictor.build(
        ...     'configs/vapt/vit-b16_vtab-eurosat.py', None,
        ...     [TaskSpec('eurosat', 'eurosat.safetensors')])
        ... # doctest: +SKIP
        >>> predictor([dict(task='eurosat', image=b64_png)])
        ... # doctest: +SKIP
        [(200, {'task': 'eurosat', 'topk': [{'label': 1, 'class': 'Forest',
          'score': 0.97}, ...]})]
    """

    def __init__(self,
                 served: ServedModel,
                 decoder: ImageDecoder,
                 topk: int = 5) -> None:
        self.served = served
        self.model = served.model
        self.decoder = decoder
        self.topk = topk

    @classmethod
    def build(cls,
              config: str,
              cfg_options: Optional[dict],
              tasks: Sequence[TaskSpec],
              topk: int = 5,
              device: str = 'cpu') -> 'MultiTaskPredictor':
        """Build the model of a base config and prompt files, and the
        decoder of the config's test pipeline.

        Args:
            config (str): The base config file.
            cfg_options (dict, optional): Config overrides.
            tasks (Sequence[TaskSpec]): Task names and prompt files.
            topk (int): Labels per answer. Defaults to 5.
            device (str): Where the model runs. Defaults to 'cpu'.

        Returns:
            MultiTaskPredictor: Ready to serve.

        Example:
            >>> MultiTaskPredictor.build(
            ...     'base.py', None, [TaskSpec('a', 'a.safetensors')]
            ...     ).model.task_names  # doctest: +SKIP
            ['a']
        """
        cfg = load_base_config(config, cfg_options)
        pipeline = inference_pipeline(cfg)  # before the model: a config error
        served = build_served_model(cfg, tasks, device)
        return cls(served, ImageDecoder(pipeline, served.model.task_names),
                   topk)

    def describe_tasks(self) -> List[dict]:
        """The tasks served (see :func:`~.model_builder.describe_tasks`)."""
        return describe_tasks(self.served)

    def decode(self, task: object, image: object) -> Decoded:
        """One request's image tensor, or the error refusing it.

        Args:
            task (str): The task name.
            image (str): The base64 of an image file.

        Returns:
            DecodedImage | RequestError: Never raises for bad input.
        """
        try:
            return self.decoder(task, image)
        except RequestError as error:
            return error

    def collate(self, items: Sequence[Decoded]) -> MixedBatch:
        """Stack the accepted images of a batch with the model's data
        preprocessor (normalisation, ``to_rgb``), keeping their tasks.

        Args:
            items (Sequence[DecodedImage | RequestError]): The decoded
                requests of a batch, in order.

        Returns:
            MixedBatch: ``inputs`` is None when every request was refused.
        """
        accepted = [item for item in items if isinstance(item, DecodedImage)]
        inputs = None
        if accepted:
            data = self.model.data_preprocessor(
                dict(inputs=[item.inputs for item in accepted]), False)
            inputs = data['inputs']
        return MixedBatch(inputs, [item.task for item in accepted],
                          list(items))

    def predict(self, batch: MixedBatch
                ) -> List[Union[Prediction, RequestError]]:
        """Run the model once on the accepted images, whatever their tasks,
        and log the batch's size and task mix.

        Args:
            batch (MixedBatch): From :meth:`collate`.

        Returns:
            list[Prediction | RequestError]: One per request, in order.
        """
        log_batch(batch.tasks, rejected=len(batch.items) - len(batch.tasks))
        samples = iter(())
        if batch.inputs is not None:
            with torch.no_grad():
                samples = iter(self.model.predict(batch.inputs, batch.tasks))
        outputs: List[Union[Prediction, RequestError]] = []
        for item in batch.items:
            if isinstance(item, RequestError):
                outputs.append(item)
                continue
            sample = next(samples)
            outputs.append(
                Prediction(item.task,
                           sample.pred_score.detach().cpu().numpy()))
        return outputs

    def answer(self, output: Union[Prediction, RequestError]
               ) -> Tuple[int, Dict[str, object]]:
        """The HTTP status and JSON answer of one request.

        Args:
            output (Prediction | RequestError): From :meth:`predict`.

        Returns:
            tuple[int, dict]: ``(200, {'task', 'topk'})`` or the error's
            ``(status, {'detail', ...})``.
        """
        if isinstance(output, RequestError):
            return output.status, output.body()
        best = top_k(output.scores, self.topk,
                     self.served.classes.get(output.task))
        return 200, dict(task=output.task, topk=best)

    def __call__(self, requests: Sequence[dict]
                 ) -> List[Tuple[int, Dict[str, object]]]:
        """Serve requests as one batch, in this process.

        Args:
            requests (Sequence[dict]): ``{'task': name, 'image': base64}``
                each.

        Returns:
            list[tuple[int, dict]]: Status and answer per request.
        """
        items = [self.decode(r.get('task'), r.get('image')) for r in requests]
        return [self.answer(o) for o in self.predict(self.collate(items))]
