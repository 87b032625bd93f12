"""One model to benchmark, with its fixed batch and its two steps."""
import time
from typing import Any, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.structures import DataSample

__all__ = ['BenchmarkCase', 'synchronize']


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (a no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _output_tensors(outputs: Any) -> List[torch.Tensor]:
    """Every tensor in (nested) model outputs, in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return [t for item in outputs for t in _output_tensors(item)]
    return []


class BenchmarkCase:
    """A built model, a fixed random batch and the steps the benchmark times.

    * Training step: ``zero_grad`` -> forward -> loss -> backward -> SGD
      step over the trainable parameters. For the bare backbone
      (``bare=True``) the images require gradients and the loss is the sum
      of the backbone's outputs, so the backward pass runs through every
      block down to the input (the cost of back-propagating to prompts
      inserted at block 0); there is no optimizer step. The outputs are
      weighted by fixed random numbers before the sum (one elementwise
      product): a plain sum of a LayerNorm output is constant, so its
      gradient would be exactly zero, which costs the same but hides
      whether the gradient really reaches the input.
    * Inference step: ``model.eval()`` and a ``torch.no_grad()`` forward
      (``mode='tensor'``: logits, or features for the bare backbone).

    The data preprocessor is not run: the batch is already a normalised
    float tensor on the device.

    Args:
        label (str): Row name.
        model (nn.Module): An mmpretrain classifier (``forward(inputs,
            data_samples, mode)``). For ``bare=True`` a classifier without
            head, whose ``mode='tensor'`` output is the backbone features.
        img_size (tuple[int, int]): (H, W) of the random images.
        batch_size (int): Training batch size.
        infer_batch_size (int, optional): Inference batch size. Defaults to
            ``batch_size``.
        num_classes (int): Labels are drawn from ``range(num_classes)``.
            Defaults to 10.
        bare (bool): Time the bare backbone as described above. Defaults to
            False.
        device (str | torch.device): Where to run. Defaults to 'cpu'.
        lr (float): SGD learning rate (momentum 0.9). Defaults to 1e-3.
        seed (int): Seed of the random batch. Defaults to 0.
        info (dict, optional): Extra fields for the result row (source,
            config path, fast_path, ...).

    Example:
        >>> from mmpretrain.registry import MODELS
        >>> model = MODELS.build(dict(
        ...     type='PromptedClassifier',
        ...     backbone=dict(type='VisionTransformer', arch='deit-tiny',
        ...                   img_size=32, patch_size=8),
        ...     neck=dict(type='VAPTNeck', num_tokens=4),
        ...     head=dict(type='LinearClsHead', num_classes=3,
        ...               in_channels=192)))
        >>> case = BenchmarkCase('vapt:4', model, (32, 32), batch_size=2,
        ...                      num_classes=3)
        >>> case.train_step(); case.infer_step().shape
        torch.Size([2, 3])
    """

    def __init__(self,
                 label: str,
                 model: nn.Module,
                 img_size: Tuple[int, int],
                 batch_size: int,
                 infer_batch_size: Optional[int] = None,
                 num_classes: int = 10,
                 bare: bool = False,
                 device: Union[str, torch.device] = 'cpu',
                 lr: float = 1e-3,
                 seed: int = 0,
                 info: Optional[dict] = None) -> None:
        for key, value in dict(
                batch_size=batch_size,
                infer_batch_size=infer_batch_size or batch_size,
                num_classes=num_classes).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'BenchmarkCase {label!r}: {key} must be a '
                                 f'positive integer, got {value!r}.')
        self.label = label
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.bare = bare
        self.img_size = tuple(img_size)
        self.batch_size = batch_size
        self.infer_batch_size = infer_batch_size or batch_size
        self.info = dict(info or {})

        generator = torch.Generator().manual_seed(seed)
        height, width = self.img_size
        self.train_inputs = torch.randn(
            batch_size, 3, height, width, generator=generator).to(self.device)
        self.infer_inputs = torch.randn(
            self.infer_batch_size, 3, height, width,
            generator=generator).to(self.device)
        labels = torch.randint(
            num_classes, (batch_size, ), generator=generator).tolist()
        self.data_samples = [
            DataSample().set_gt_label(label).to(self.device)
            for label in labels
        ]

        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.num_trainable = sum(p.numel() for p in self.trainable)
        self.num_total = sum(p.numel() for p in model.parameters())
        self.param_bytes = sum(p.numel() * p.element_size()
                               for p in model.parameters())
        self.output_weights: Optional[List[torch.Tensor]] = None
        self._seed = seed
        if bare:
            if self.trainable:
                names = [n for n, p in model.named_parameters()
                         if p.requires_grad][:3]
                raise ValueError(
                    f'BenchmarkCase {label!r}: the bare backbone must be '
                    f'frozen, but {names} require gradients.')
            self.train_inputs.requires_grad_(True)
            self.optimizer = None
        else:
            if not self.trainable:
                raise ValueError(
                    f'BenchmarkCase {label!r}: the model has no trainable '
                    'parameters, so a training step is undefined. Give it a '
                    'head or a prompt neck, or benchmark it as the bare row.')
            if getattr(model, 'head', None) is None:
                raise ValueError(
                    f'BenchmarkCase {label!r}: the model has no head, so it '
                    'has no loss to train with.')
            self.optimizer = torch.optim.SGD(
                self.trainable, lr=lr, momentum=0.9)

    def release_grads(self) -> None:
        """Free the gradients of the previous training step."""
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        self.train_inputs.grad = None

    def train_step(self) -> torch.Tensor:
        """One training step (see the class docstring).

        Returns:
            Tensor: The detached loss (the weighted output sum for the
            bare backbone).
        """
        self.model.train()
        self.release_grads()
        if self.bare:
            outputs = _output_tensors(
                self.model(self.train_inputs, mode='tensor'))
            if not outputs:
                raise ValueError(
                    f'BenchmarkCase {self.label!r}: the backbone returned no '
                    'tensor to back-propagate from.')
            if self.output_weights is None:
                generator = torch.Generator().manual_seed(self._seed + 1)
                self.output_weights = [
                    torch.randn(out.shape, generator=generator).to(out)
                    for out in outputs
                ]
            loss = sum((out * weight).sum()
                       for out, weight in zip(outputs, self.output_weights))
            loss.backward()
        else:
            losses = self.model(
                self.train_inputs, self.data_samples, mode='loss')
            loss, _ = self.model.parse_losses(losses)
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def infer_step(self) -> Any:
        """One inference step; returns the model's outputs."""
        self.model.eval()
        with torch.no_grad():
            return self.model(self.infer_inputs, mode='tensor')

    def time_steps(self, train: bool, iters: int = 1) -> float:
        """Seconds per step, over ``iters`` consecutive steps.

        Args:
            train (bool): Time :meth:`train_step` (else :meth:`infer_step`).
            iters (int): Consecutive steps timed together. Defaults to 1.

        Returns:
            float: Wall-clock seconds per step.
        """
        step = self.train_step if train else self.infer_step
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        synchronize(self.device)
        return (time.perf_counter() - start) / iters
