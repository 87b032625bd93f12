"""mmengine's CheckpointHook with atomic writes and rotation after saving."""
import glob
import logging
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from vapt_mm.utils.atomic_io import atomic_write
from ..atomic_backend import ATOMIC_LOCAL_BACKEND

__all__ = ['AtomicCheckpointHook']


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose files appear whole or not at all.

    Takes every argument of mmengine's ``CheckpointHook`` and saves at the
    same times under the same names. Three things differ:

    * Checkpoints in a local folder are written through
      :class:`~vapt_mm.engine.atomic_backend.AtomicLocalBackend` (a
      temporary file beside the target, then a rename), so a run killed
      while saving leaves the previous checkpoints and no half-written
      ``epoch_N.pth``. Explicit ``backend_args`` / ``file_client_args`` and
      remote ``out_dir`` s are left to their own backend.
    * The ``last_checkpoint`` pointer is written atomically too.
    * With ``max_keep_ckpts``, the oldest checkpoint is removed only after
      the new one has been written: a save that fails or is refused (e.g. by
      :class:`~vapt_mm.engine.hooks.FiniteLossHook` for non-finite weights)
      leaves all the kept checkpoints in place. mmengine removes first.
      The same holds for ``save_best``: the previous ``best_*.pth`` is
      removed only once the new best one is written.

    At ``before_train`` it also deletes the hidden temporary files an
    earlier run left when it was killed in the middle of a save.

    Args:
        **kwargs: The arguments of mmengine's ``CheckpointHook``
            (``interval``, ``by_epoch``, ``max_keep_ckpts``, ``out_dir``,
            ``save_best``, ``filename_tmpl``, ``backend_args``, ...).

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
    """

    def before_train(self, runner) -> None:
        """Choose the atomic backend for a local folder, then set up.

        Args:
            runner (Runner): The runner of the training process.
        """
        out_dir = self.out_dir if self.out_dir is not None else \
            runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and '://' not in str(out_dir)):
            self.backend_args = dict(backend=ATOMIC_LOCAL_BACKEND)
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            self._remove_stale_temporary_files()

    def _remove_stale_temporary_files(self) -> None:
        """Delete ``.<checkpoint name>.*.tmp`` left by a killed save."""
        pattern = '.' + self.filename_tmpl.replace('{}', '*') + '.*.tmp'
        for path in glob.glob(osp.join(glob.escape(self.out_dir), pattern)):
            print_log(
                f'AtomicCheckpointHook: removing {path}, the temporary file '
                'of a save that was interrupted.',
                logger='current',
                level=logging.WARNING)
            os.remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save, point ``last_checkpoint`` at it, then rotate.

        Args:
            runner (Runner): The runner of the training process.
            step (int): The epoch or iteration in the file name.
            meta (dict): The checkpoint's meta information.
        """
        expired = None
        # _save_checkpoint and _save_best_checkpoint may both save at one
        # step; the step is counted once.
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        # Model parallel-like training pulls sharded states from all ranks
        # in save_checkpoint; only the main process keeps the files.
        if not is_main_process():
            return
        with atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                          'w') as f:
            f.write(self.last_ckpt)
        if expired is not None:
            self._remove_checkpoint(self.filename_tmpl.format(expired))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's ``save_best``, removing the previous best checkpoint
        only after the new one is written.

        mmengine deletes the previous ``best_*.pth`` before it saves the new
        one; here its deletions are recorded while it runs and carried out
        once it returned (none after a failed save).

        Args:
            runner (Runner): The runner of the training process.
            metrics (dict): The validation metrics.
        """
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        # one key indicator: best_ckpt_path; several: best_ckpt_path_dict
        current = {getattr(self, 'best_ckpt_path', None)}
        current.update(getattr(self, 'best_ckpt_path_dict', {}).values())
        for path in deferred.paths:
            if path in current:  # the new best has the same name
                continue
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):
                backend.rmtree(path)

    def _remove_checkpoint(self, filename: str) -> None:
        """Delete an expired checkpoint (a file, or a DeepSpeed folder)."""
        path = self.file_backend.join_path(self.out_dir, filename)
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)


class _DeferredRemoval:
    """A file backend that records ``remove`` / ``rmtree`` instead of
    deleting; everything else goes to the real backend."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.paths = []

    def remove(self, path) -> None:
        self.paths.append(path)

    def rmtree(self, path) -> None:
        self.paths.append(path)

    def __getattr__(self, name: str):
        return getattr(self._backend, name)
