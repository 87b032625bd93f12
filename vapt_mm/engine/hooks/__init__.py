# Importing the hooks also registers the torch >= 2.6 weights_only allow-list
# for Runner checkpoints (vapt_mm.engine.checkpoint_loading).
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .finite_loss_hook import FiniteLossHook, TrainingDivergedError
from .frozen_weight_guard_hook import FrozenWeightGuardHook
from .main_process_logger_hook import MainProcessLoggerHook
from .parameter_report_hook import ParameterReportHook
from .trainable_checkpoint_hook import TrainableCheckpointHook

__all__ = [
    'AtomicCheckpointHook', 'FiniteLossHook', 'FrozenWeightGuardHook',
    'MainProcessLoggerHook', 'ParameterReportHook', 'TrainableCheckpointHook',
    'TrainingDivergedError'
]
