"""mmengine's ``LoggerHook`` with the test-metrics file written once."""
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class MainProcessLoggerHook(LoggerHook):
    """``LoggerHook`` whose ``after_test_epoch`` runs on the main process.

    mmengine 0.10's ``LoggerHook.after_test_epoch`` writes the test metrics
    to ``<work_dir>/<timestamp>/<timestamp>.json`` on **every** rank (the
    timestamp is shared), each opening the file for writing. In a
    distributed test (``tools/dist_test.sh``) the ranks overwrite each
    other's bytes and the file may end up as invalid JSON such as
    ``{"accuracy/top1": 62.5, ..., "time": 0.0272}4}``. The metrics are
    already gathered on every rank, so the main process alone logs them and
    writes the file; the other ranks print nothing anyway (mmengine logs
    only errors there). Training and validation logging are mmengine's.

    Args:
        **kwargs: The arguments of mmengine's ``LoggerHook`` (``interval``,
            ``ignore_last``, ``interval_exp_name``, ``out_dir``, ...).

    Example:
        >>> default_hooks = dict(
        ...     logger=dict(type='MainProcessLoggerHook', interval=10))
    """

    def after_test_epoch(self,
                         runner,
                         metrics: Optional[Dict[str, float]] = None) -> None:
        """Log the test metrics and write their JSON file (main process).

        Args:
            runner (Runner): The runner of the testing process.
            metrics (dict, optional): The test metrics.
        """
        if is_main_process():
            super().after_test_epoch(runner, metrics)
