from .amp_config import amp_optim_wrapper_cfg
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper', 'amp_optim_wrapper_cfg']
