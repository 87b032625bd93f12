"""One frozen backbone serving many prompt-tuned tasks in one batch."""
import logging
import re
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.pretrained_check import check_pretrained_checkpoint
from ...utils.user_errors import CheckpointError, ConfigError, user_message
from ..backbones import build_backbone_adapter
from ..necks import build_prompt_neck
from ..utils.multi_task_forward import TaskGroup, run_backbone_multi_task

__all__ = ['MultiTaskPromptedClassifier']

#: The task names the model accepts: letters, digits, ``_`` and ``-``.
TASK_NAME = re.compile(r'^[A-Za-z0-9_\-]+$')
TaskSpec = Union[str, Sequence[str]]


def _select(feats, rows: Union[slice, torch.Tensor]):
    """The rows ``rows`` of (nested tuples of) feature tensors."""
    if isinstance(feats, torch.Tensor):
        return feats[rows]
    return type(feats)(_select(f, rows) for f in feats)


def _preprocessing(module: nn.Module) -> dict:
    """What a data preprocessor does to an image at inference."""
    state = {
        key: getattr(module, key, None)
        for key in ('to_rgb', 'pad_size_divisor', 'pad_value',
                    '_enable_normalize', '_channel_conversion')
    }
    for key in ('mean', 'std'):
        value = getattr(module, key, None)
        state[key] = None if value is None else value.flatten().tolist()
    state['type'] = type(module).__name__
    return state


@MODELS.register_module()
class MultiTaskPromptedClassifier(BaseClassifier):
    """A frozen backbone shared by any number of prompt-tuned tasks.

    A task is a name, a prompt neck (VPT-shallow, VPT-deep, VAPT, any
    ``num_tokens``) built for this backbone and a classification head. A
    batch may mix the tasks freely: each sample names its task, the
    backbone runs **once** over the whole batch with each sample's own
    prompts at every block
    (:func:`~vapt_mm.models.utils.multi_task_forward.run_backbone_multi_task`:
    prompt sets of different lengths are zero-padded to the longest and the
    padding is hidden as keys by an attention mask, an exact scheme), and
    each task's head classifies its own samples. Every sample's logits equal
    those of its task's single-task :class:`PromptedClassifier` on the same
    image, up to floating-point rounding.

    Tasks are added and removed at run time (:meth:`add_task`,
    :meth:`remove_task`) without touching the backbone. A task may carry the
    fingerprint of the backbone it was trained on; all fingerprints must
    equal the model's :attr:`backbone_fingerprint`.

    The model serves trained tasks: ``mode='loss'`` is refused (train each
    task as a ``PromptedClassifier``). The backbone is frozen and always in
    eval mode; :meth:`init_weights` initialises only the backbone (from its
    ``Pretrained`` init_cfg), never a task.

    Args:
        backbone (dict | nn.Module): Backbone config or module, one that
            prompt necks can attach to.
        tasks (dict, optional): ``{name: dict(neck=..., head=...)}`` to add
            when built (their weights are then loaded with the state dict).
        adapter_cfg (dict, optional): Options of the backbone adapter, as
            in ``PromptedClassifier``.
        backbone_fingerprint (str, optional): Fingerprint of the backbone's
            weights. Without it, the first task added with a fingerprint
            sets it.
        data_preprocessor (dict | nn.Module, optional): Shared by all
            tasks. Defaults to ``ClsDataPreprocessor`` without
            normalisation, as ``ImageClassifier``.
        init_cfg (dict, optional): Not supported (the backbone carries its
            own ``init_cfg``); must be None.

    Example:
        >>> import torch
        >>> from vapt_mm.models import PromptedClassifier
        >>> vpt = PromptedClassifier(
        ...     backbone=dict(type='VisionTransformer', arch='deit-tiny',
        ...                   img_size=32, patch_size=8),
        ...     neck=dict(type='VPTNeck', num_tokens=4, deep=True),
        ...     head=dict(type='LinearClsHead', num_classes=3,
        ...               in_channels=192))
        >>> vapt = PromptedClassifier(
        ...     backbone=vpt.backbone,  # the same backbone object
        ...     neck=dict(type='VAPTNeck', num_tokens=2),
        ...     head=dict(type='LinearClsHead', num_classes=5,
        ...               in_channels=192))
        >>> model = MultiTaskPromptedClassifier.from_classifiers(
        ...     dict(pets=vpt, cars=vapt)).eval()
        >>> images = torch.rand(3, 3, 32, 32)
        >>> logits = model(images, tasks=['pets', 'cars', 'pets'])
        >>> [tuple(x.shape) for x in logits]
        [(3,), (5,), (3,)]
        >>> [s.task for s in model.predict(images, ['cars', 'pets', 'cars'])]
        ['cars', 'pets', 'cars']
    """

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 tasks: Optional[Mapping[str, dict]] = None,
                 adapter_cfg: Optional[dict] = None,
                 backbone_fingerprint: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ConfigError(
                user_message(
                    'MultiTaskPromptedClassifier takes no init_cfg: it would '
                    'initialise the trained tasks too.',
                    where=f'init_cfg={init_cfg!r}',
                    fix="give the backbone its own init_cfg (e.g. "
                    "dict(type='Pretrained', checkpoint=...)) instead."))
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor or {})
            data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor)
        if not isinstance(backbone, nn.Module):
            backbone = MODELS.build(backbone)
        self.backbone = backbone
        self.adapter_cfg = dict(adapter_cfg or {})
        # Not an nn.Module: it only points at the backbone's modules.
        self.backbone_adapter = build_backbone_adapter(self.backbone,
                                                       **self.adapter_cfg)
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        #: Fingerprint of the backbone's weights that every task added with
        #: a fingerprint must carry (None: not known yet).
        self.backbone_fingerprint = backbone_fingerprint
        self.necks = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        for name, task in dict(tasks or {}).items():
            unknown = set(task) - {'neck', 'head', 'fingerprint'}
            if unknown or 'neck' not in task or 'head' not in task:
                raise ConfigError(
                    user_message(
                        f'Task {name!r} must be dict(neck=..., head=...) '
                        '(optionally fingerprint=...).',
                        where=f'tasks.{name} = {task!r}'))
            self.add_task(name, task['neck'], task['head'],
                          task.get('fingerprint'))

    @classmethod
    def from_classifiers(cls, classifiers: Mapping[str, nn.Module],
                         **kwargs) -> 'MultiTaskPromptedClassifier':
        """Serve several single-task ``PromptedClassifier`` models at once.

        The first classifier's backbone (and data preprocessor) become the
        shared ones; every other classifier must hold the same backbone
        object or one with identical weights, the same adapter options and
        the same preprocessing. The tasks' necks and heads are the
        classifiers' own modules, not copies.

        Args:
            classifiers (Mapping[str, PromptedClassifier]): Task name ->
                trained classifier with a prompt neck.
            **kwargs: Further arguments of the constructor (e.g.
                ``backbone_fingerprint``).

        Returns:
            MultiTaskPromptedClassifier: The model, in the first
            classifier's train/eval mode.

        Raises:
            CheckpointError: A classifier's backbone weights differ.
            ConfigError: Adapter options or preprocessing differ, or a
                classifier has no prompt neck or trained backbone
                parameters of its own (``frozen_exclude``,
                ``freeze_backbone=False``).
        """
        if not classifiers:
            raise ConfigError('from_classifiers needs at least one task.')
        names = list(classifiers)
        for name in names:  # before the shared backbone is frozen again
            cls._check_servable(name, classifiers[name])
        first = classifiers[names[0]]
        model = cls(
            backbone=first.backbone,
            adapter_cfg=cls._adapter_options(first.backbone_adapter),
            data_preprocessor=first.data_preprocessor,
            **kwargs)
        for name in names:
            classifier = classifiers[name]
            model._check_same_backbone(name, classifier)
            model.add_task(name, classifier.neck, classifier.head)
        return model.train(first.training)

    @staticmethod
    def _check_servable(name: str, classifier: nn.Module) -> None:
        trained = [n for n, p in classifier.backbone.named_parameters()
                   if p.requires_grad]
        if trained or not getattr(classifier, 'freeze_backbone', True):
            raise ConfigError(
                user_message(
                    f'Task {name!r} trained backbone parameters of its own, '
                    'which a shared frozen backbone cannot serve.',
                    where=f'trainable backbone parameters: {trained[:5]}',
                    fix='serve it with its own PromptedClassifier, or '
                    'retrain it with a fully frozen backbone.'))
        if getattr(classifier, 'neck', None) is None:
            raise ConfigError(
                user_message(
                    f'Task {name!r} has no prompt neck: a multi-task model '
                    'serves prompt-tuned tasks.',
                    fix='give the classifier a VPTNeck or VAPTNeck.'))

    @staticmethod
    def _adapter_options(adapter) -> dict:
        out_pool = getattr(adapter, 'out_pool', None)
        return {} if out_pool is None else dict(out_pool=out_pool)

    def _check_same_backbone(self, name: str, classifier: nn.Module) -> None:
        other = classifier.backbone
        if other is not self.backbone:
            if type(other) is not type(self.backbone):
                raise CheckpointError(
                    user_message(
                        f'Task {name!r} runs on a {type(other).__name__} '
                        f'backbone, the model on a '
                        f'{type(self.backbone).__name__}.',
                        fix='build every task on the same backbone.'))
            ours, theirs = (self.backbone.state_dict(), other.state_dict())
            if ours.keys() != theirs.keys():
                diff = sorted(set(ours) ^ set(theirs))[:5]
                raise CheckpointError(
                    user_message(
                        f'Task {name!r} has another backbone architecture.',
                        where=f'backbone keys only in one of them: {diff}',
                        fix='build every task on the same backbone.'))
            for key, tensor in ours.items():
                if not (tensor.shape == theirs[key].shape
                        and torch.equal(tensor, theirs[key].to(tensor))):
                    raise CheckpointError(
                        user_message(
                            f'Task {name!r} was given a backbone with other '
                            'weights than the shared one.',
                            where=f'backbone key {key!r}',
                            fix='load the same backbone checkpoint for every '
                            'task (or pass the same backbone object).'))
        options = self._adapter_options(classifier.backbone_adapter)
        if options != self._adapter_options(self.backbone_adapter):
            raise ConfigError(
                user_message(
                    f'Task {name!r} uses other backbone adapter options.',
                    where=f'{options} vs the model\'s {self.adapter_cfg}',
                    fix='use one adapter_cfg for every task.'))
        ours = _preprocessing(self.data_preprocessor)
        theirs = _preprocessing(classifier.data_preprocessor)
        if ours != theirs:
            diff = {k: (ours[k], theirs[k]) for k in ours
                    if ours[k] != theirs[k]}
            raise ConfigError(
                user_message(
                    f'Task {name!r} preprocesses images differently from '
                    'the shared data preprocessor.',
                    where=f'(shared, task) values: {diff}',
                    fix='give every task the same data_preprocessor (mean, '
                    'std, to_rgb).'))

    # ----------------------------------------------------------- tasks --
    @property
    def task_names(self) -> List[str]:
        """The tasks, in the order they were added."""
        return list(self.necks.keys())

    def add_task(self,
                 name: str,
                 neck: Union[dict, nn.Module],
                 head: Union[dict, nn.Module],
                 fingerprint: Optional[str] = None) -> None:
        """Add a task; the backbone is not touched.

        Args:
            name (str): Task name: letters, digits, ``_`` and ``-``.
            neck (dict | BasePromptNeck): Prompt neck config (built with
                this backbone's geometry) or a neck built for it.
            head (dict | nn.Module): Classification head config or module.
            fingerprint (str, optional): Fingerprint of the backbone the
                task was trained on; must equal
                :attr:`backbone_fingerprint` (the first one given sets it
                while the model has none).

        Raises:
            ConfigError: The name is invalid or taken.
            CheckpointError: The fingerprint differs from the model's.
        """
        if not isinstance(name, str) or not TASK_NAME.match(name):
            raise ConfigError(
                user_message(
                    f'Invalid task name {name!r}.',
                    fix='use letters, digits, "_" and "-" only.'))
        if name in self.necks:
            raise ConfigError(
                user_message(
                    f'Task {name!r} exists already.',
                    fix=f'remove_task({name!r}) first, or pick another '
                    'name.'))
        if fingerprint is not None:
            if self.backbone_fingerprint is None:
                self.backbone_fingerprint = fingerprint
            elif fingerprint != self.backbone_fingerprint:
                raise CheckpointError(
                    user_message(
                        f'Task {name!r} was trained on another backbone '
                        'than the one this model serves.',
                        where=f'task backbone fingerprint {fingerprint}, '
                        f'model backbone fingerprint '
                        f'{self.backbone_fingerprint}',
                        fix='serve the task with the backbone it was '
                        'trained on, in a separate model.'))
        neck = build_prompt_neck(neck, self.backbone_adapter,
                                 'MultiTaskPromptedClassifier')
        deprecated_pool = getattr(neck, 'out_pool', None)
        if deprecated_pool is not None and deprecated_pool != getattr(
                self.backbone_adapter, 'out_pool', None):
            raise ConfigError(
                user_message(
                    f'Task {name!r}: neck.out_pool={deprecated_pool!r} '
                    'disagrees with the shared backbone adapter.',
                    fix='drop out_pool from the neck; set '
                    'adapter_cfg=dict(out_pool=...) on the model.'))
        if not isinstance(head, nn.Module):
            head = MODELS.build(head)
        reference = next(self.backbone.parameters(), None)
        if reference is not None:
            neck.to(device=reference.device, dtype=reference.dtype)
            head.to(device=reference.device, dtype=reference.dtype)
        neck.train(self.training)
        head.train(self.training)
        self.necks[name] = neck
        self.heads[name] = head
        print_log(f'MultiTaskPromptedClassifier: added task {name!r}.',
                  logger='current', level=logging.DEBUG)

    def remove_task(self, name: str) -> None:
        """Remove a task; the backbone is not touched.

        Args:
            name (str): The task.
        """
        self._check_known([name])
        del self.necks[name]
        del self.heads[name]

    def _check_known(self, names: Sequence[str]) -> None:
        unknown = sorted({n for n in names if n not in self.necks},
                         key=str)
        if unknown:
            raise ConfigError(
                user_message(
                    f'Unknown task(s) {unknown}.',
                    where=f'tasks of this model: {self.task_names}',
                    fix='add the task first (add_task) or fix the name.'))

    def resolve_tasks(self, batch_size: int, tasks: Optional[TaskSpec],
                      data_samples: Optional[Sequence] = None) -> List[str]:
        """The task name of every sample.

        Args:
            batch_size (int): B.
            tasks (str | Sequence[str], optional): One name for the whole
                batch or one per sample.
            data_samples (Sequence[DataSample], optional): Used when
                ``tasks`` is None: each sample's ``task`` (metainfo or data
                field).

        Returns:
            list[str]: B task names, all known.
        """
        if tasks is None:
            if data_samples is None:
                raise ConfigError(
                    user_message(
                        'No task given for the batch.',
                        fix='pass tasks=[name per sample] (or one name), or '
                        "data samples with metainfo 'task'."))
            tasks = [sample.get('task') for sample in data_samples]
            missing = [i for i, t in enumerate(tasks) if t is None]
            if missing:
                raise ConfigError(
                    user_message(
                        f'Data samples {missing[:10]} name no task.',
                        fix="set sample.set_metainfo(dict(task=name)) or "
                        'pass tasks=...'))
        elif isinstance(tasks, str):
            tasks = [tasks] * batch_size
        tasks = list(tasks)
        if data_samples is not None:
            clash = [(i, t, s.get('task'))
                     for i, (t, s) in enumerate(zip(tasks, data_samples))
                     if s.get('task') not in (None, t)]
            if clash:
                raise ConfigError(
                    user_message(
                        'tasks= and the data samples name different tasks.',
                        where='(sample, tasks=, data sample task): '
                        f'{clash[:5]}',
                        fix='name each sample\'s task in one place.'))
        if len(tasks) != batch_size:
            raise ConfigError(
                user_message(
                    f'{len(tasks)} task names for a batch of {batch_size} '
                    'images.',
                    fix='give one task name per image, or one for all.'))
        self._check_known(tasks)
        return tasks

    def _grouped(self, names: Sequence[str]) -> Dict[str, List[int]]:
        """Task -> positions of its samples, tasks in the model's order."""
        positions: Dict[str, List[int]] = {}
        for position, name in enumerate(names):
            positions.setdefault(name, []).append(position)
        return {
            name: positions[name]
            for name in self.task_names if name in positions
        }

    # --------------------------------------------------------- forward --
    def extract_feat(self, inputs: torch.Tensor,
                     tasks: Optional[TaskSpec] = None) -> tuple:
        """Backbone features of a mixed batch, each sample with its task's
        prompts (one backbone pass).

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)``.
            tasks (str | Sequence[str]): Task per sample (or one for all).

        Returns:
            tuple: The backbone's outputs for the whole batch.
        """
        names = self.resolve_tasks(inputs.shape[0], tasks)
        order = [i for positions in self._grouped(names).values()
                 for i in positions]
        feats = self._grouped_feats(inputs, names)
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return _select(feats, inverse.to(inputs.device))

    def _grouped_feats(self, inputs: torch.Tensor,
                       names: Sequence[str]) -> tuple:
        """Backbone features of the batch sorted by task (model order)."""
        grouped = self._grouped(names)
        order = [i for positions in grouped.values() for i in positions]
        if order != list(range(len(order))):
            inputs = inputs[torch.tensor(order, device=inputs.device)]
        groups = [
            TaskGroup(self.necks[name], len(positions))
            for name, positions in grouped.items()
        ]
        return run_backbone_multi_task(self.backbone_adapter, inputs, groups)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[Sequence[DataSample]] = None,
                mode: str = 'tensor',
                tasks: Optional[TaskSpec] = None):
        """mmpretrain's forward; each sample's task comes from ``tasks`` or
        its data sample's ``task``.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)``.
            data_samples (list[DataSample], optional): With metainfo
                ``task`` when ``tasks`` is not given.
            mode (str): 'tensor' (a list of B 1-D logit tensors, each of
                its task's length) or 'predict' (data samples with
                ``pred_score``, ``pred_label`` and ``task``).
            tasks (str | Sequence[str], optional): Task per sample.
        """
        if mode == 'tensor':
            names = self.resolve_tasks(inputs.shape[0], tasks, data_samples)
            return self._logits(inputs, names)
        if mode == 'predict':
            return self.predict(inputs, data_samples, tasks=tasks)
        if mode == 'loss':
            raise ConfigError(
                user_message(
                    'MultiTaskPromptedClassifier serves trained tasks and '
                    "has no training mode='loss'.",
                    fix='train each task as a PromptedClassifier, then add '
                    'it here.'))
        raise ConfigError(f'Invalid mode {mode!r}: use "tensor" or '
                          '"predict".')

    def _per_task(self, inputs: torch.Tensor, names: Sequence[str]):
        """(task, sample positions, the task's features) per task."""
        feats = self._grouped_feats(inputs, names)
        start = 0
        for name, positions in self._grouped(names).items():
            rows = slice(start, start + len(positions))
            start += len(positions)
            yield name, positions, _select(feats, rows)

    def _logits(self, inputs: torch.Tensor,
                names: Sequence[str]) -> List[torch.Tensor]:
        logits: List[Optional[torch.Tensor]] = [None] * len(names)
        for name, positions, feats in self._per_task(inputs, names):
            for position, row in zip(positions, self.heads[name](feats)):
                logits[position] = row
        return logits

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[Union[Sequence[DataSample],
                                             TaskSpec]] = None,
                tasks: Optional[TaskSpec] = None) -> List[DataSample]:
        """Predictions for a mixed batch, ``predict(images, tasks)``.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)``.
            data_samples (list[DataSample] | list[str] | str, optional):
                Data samples naming their ``task``; or, as a shorthand, the
                task names themselves.
            tasks (str | Sequence[str], optional): Task per sample, when
                the data samples do not say it.

        Returns:
            list[DataSample]: Per sample, in input order: ``pred_score``
            and ``pred_label`` from its task's head, metainfo ``task``.
        """
        if isinstance(data_samples, str) or (
                data_samples is not None
                and all(isinstance(s, str) for s in data_samples)):
            if tasks is not None:
                raise ConfigError('Give the task names once: as tasks= or '
                                  'in place of the data samples.')
            data_samples, tasks = None, data_samples
        names = self.resolve_tasks(inputs.shape[0], tasks, data_samples)
        results: List[Optional[DataSample]] = [None] * len(names)
        for name, positions, feats in self._per_task(inputs, names):
            samples = None
            if data_samples is not None:
                samples = [data_samples[i] for i in positions]
            predicted = self.heads[name].predict(feats, samples)
            for position, sample in zip(positions, predicted):
                if sample.get('task') is None:
                    sample.set_metainfo(dict(task=name))
                results[position] = sample
        return results

    # ----------------------------------------------- frozen backbone --
    def init_weights(self) -> None:
        """Initialise the backbone from its own ``init_cfg`` (its
        ``Pretrained`` file checked first); the tasks are left as they
        are."""
        init_cfg = getattr(self.backbone, 'init_cfg', None)
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            check_pretrained_checkpoint(self.backbone, init_cfg['checkpoint'],
                                        init_cfg.get('prefix'))
        self.backbone.init_weights()
        self.backbone_adapter.after_init_weights()

    def train(self, mode: bool = True) -> 'MultiTaskPromptedClassifier':
        """Set the tasks' mode; the frozen backbone stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self
