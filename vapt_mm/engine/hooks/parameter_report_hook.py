"""Log a table of total and trainable parameters when training starts."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from vapt_mm.utils.parameter_count import (count_parameters,
                                           format_parameter_report)
from ...models.utils.frozen_state import unwrap_model


@HOOKS.register_module()
class ParameterReportHook(Hook):
    """Print the parameters of each model component at ``before_train``.

    The table has one row per top-level child of the model that holds
    parameters (``backbone``, ``neck``, ``head``, ...; a DDP wrapper is
    unwrapped) with its total and trainable counts, a ``total`` row, the
    trainable share in percent, and the backbone parameters left trainable
    (a fully trainable submodule collapsed to ``'backbone.layers.11.*'``).
    The counting is :func:`vapt_mm.utils.parameter_count.count_parameters`,
    which tools can call directly.

    Args:
        backbone (str): Name of the model's child whose trainable
            parameters are listed. Defaults to 'backbone'.

    Example:
        >>> custom_hooks = [dict(type='ParameterReportHook')]
        >>> # the log then shows, for ViT-B/16 with VAPT on 10 classes:
        >>> # component       total  trainable  trainable %
        >>> # backbone   85,798,656          0        0.00%
        >>> # neck           55,608     55,608      100.00%
        >>> # ...
    """

    priority = 'VERY_LOW'

    def __init__(self, backbone: str = 'backbone') -> None:
        if not isinstance(backbone, str) or not backbone:
            raise TypeError('ParameterReportHook: `backbone` must be the '
                            "name of the model's backbone child, got "
                            f'{backbone!r}.')
        self.backbone = backbone

    def before_train(self, runner) -> None:
        """Log the parameter table.

        Args:
            runner (Runner): The runner of the training process.
        """
        model = unwrap_model(runner.model)
        counts = count_parameters(model, backbone=self.backbone)
        print_log(
            format_parameter_report(
                counts, title=f'Parameters of {type(model).__name__}:'),
            logger='current')
