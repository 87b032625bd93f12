"""``[NAME=]PROMPT_FILE`` arguments: which prompt file serves which task."""
import os.path as osp
from typing import List, NamedTuple, Sequence

from ..models.classifiers.multi_task_classifier import TASK_NAME
from ..utils.user_errors import ConfigError, MissingFileError, user_message

__all__ = ['TaskSpec', 'parse_task_specs']

DOCS = 'docs/serving.md#the-server'


class TaskSpec(NamedTuple):
    """A task to serve: its name and its prompt file."""
    name: str
    path: str


def _split(spec: str) -> TaskSpec:
    name, sep, path = spec.partition('=')
    if sep and name and '/' not in name and osp.sep not in name:
        if not TASK_NAME.match(name):
            raise ConfigError(
                user_message(
                    f'Invalid task name {name!r}.',
                    where=spec,
                    fix='use letters, digits, "_" and "-" only.',
                    docs=DOCS))
        return TaskSpec(name, path)
    stem = osp.splitext(osp.basename(spec))[0]
    if not TASK_NAME.match(stem):
        raise ConfigError(
            user_message(
                f'The file name {stem!r} is no valid task name.',
                where=spec,
                fix=f'name the task: NAME={spec} (letters, digits, "_" and '
                '"-").',
                docs=DOCS))
    return TaskSpec(stem, spec)


def parse_task_specs(specs: Sequence[str]) -> List[TaskSpec]:
    """Task names and prompt files of ``[NAME=]PROMPT_FILE`` arguments.

    Without ``NAME=`` the task is named after the file's stem. Every file
    must exist and every name be used once.

    Args:
        specs (Sequence[str]): The arguments, e.g.
            ``['eurosat.safetensors', 'pets=pets_v2.safetensors']``.

    Returns:
        list[TaskSpec]: ``(name, path)`` per argument, in order.

    Raises:
        ConfigError: A name is invalid or given twice.
        MissingFileError: A prompt file does not exist.

    Example:
        >>> parse_task_specs(['a/eurosat.safetensors',
        ...                   'pets=b/pets_v2.safetensors'])
        ... # doctest: +SKIP
        [TaskSpec(name='eurosat', path='a/eurosat.safetensors'),
         TaskSpec(name='pets', path='b/pets_v2.safetensors')]
    """
    tasks = [_split(spec) for spec in specs]
    seen = {}
    for spec, task in zip(specs, tasks):
        if task.name in seen:
            raise ConfigError(
                user_message(
                    f'Two prompt files would serve the task {task.name!r}.',
                    where=f'{seen[task.name]} and {spec}',
                    fix='name one of them: NAME=PROMPT_FILE.',
                    docs=DOCS))
        seen[task.name] = spec
    for task in tasks:
        if not osp.isfile(task.path):
            raise MissingFileError(
                user_message(
                    f'Prompt file {task.path} does not exist.',
                    where=f'task {task.name!r}',
                    fix='check the path (tools/model_converters/'
                    'extract_prompts.py writes prompt files).',
                    docs=DOCS))
    return tasks
