"""Distributed launch on machines without an accelerator (gloo on CPU).

mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` for the
``pytorch``, ``slurm`` and ``mpi`` launchers, and ``Runner.wrap_model`` gives
``DistributedDataParallel`` ``device_ids=[LOCAL_RANK]``. Both fail on a
CPU-only machine. The helpers here create the default process group with the
gloo backend *before* the Runner is built (the Runner then sees
``is_distributed()`` and skips its own initialisation) and rewrite the model
wrapper config so DDP gets ``device_ids=None``.

On a machine with a GPU (or another accelerator mmengine supports) nothing is
changed: the standard mmengine path (nccl, one device per process) runs.
"""
import datetime
import os
import subprocess
from typing import Dict, Mapping, Optional

import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.device import get_device
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

from ..utils.user_errors import ConfigError, ConfigKeyError, ConfigTypeError

LAUNCHERS = ('pytorch', 'slurm', 'mpi')
# Backends that can run collectives on CPU tensors.
CPU_BACKENDS = ('gloo', 'mpi')
DEFAULT_MASTER_PORT = '29500'


def is_cpu_only() -> bool:
    """Whether mmengine will run on the CPU (no CUDA/NPU/MLU/MPS/MUSA device).

    Returns:
        bool: True when mmengine's detected device is ``'cpu'``.

    Example:
        >>> from vapt_mm.engine.dist_cpu import is_cpu_only
        >>> isinstance(is_cpu_only(), bool)
        True
    """
    return get_device() == 'cpu'


def _require_env(env: Mapping[str, str], name: str, launcher: str) -> str:
    """Read ``env[name]`` or raise an error that says which launcher set it."""
    if name not in env:
        raise ConfigKeyError(
            f'The environment variable {name} is not set, but '
            f"launcher='{launcher}' needs it. Start the job through "
            'tools/dist_train.sh / tools/dist_test.sh (torchrun), '
            'tools/slurm_train.sh / tools/slurm_test.sh (srun) or mpirun, '
            "or use '--launcher none' for a single process.")
    return env[name]


def _first_slurm_host(node_list: str) -> str:
    """Return the first host name of a SLURM node list via ``scontrol``."""
    try:
        out = subprocess.run(['scontrol', 'show', 'hostnames', node_list],
                             capture_output=True,
                             text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(
            f'Cannot resolve the master host of SLURM_NODELIST={node_list!r} '
            f'with `scontrol show hostnames` ({err}). Set MASTER_ADDR '
            'explicitly.') from err
    hosts = out.split()
    if not hosts:
        raise RuntimeError('`scontrol show hostnames` returned no host for '
                           f'SLURM_NODELIST={node_list!r}. Set MASTER_ADDR '
                           'explicitly.')
    return hosts[0]


def dist_env_from_launcher(
        launcher: str,
        env: Optional[Mapping[str, str]] = None,
        port: Optional[int] = None) -> Dict[str, str]:
    """Derive the torch ``env://`` variables for a launcher.

    ``torchrun`` already exports ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR`` and ``MASTER_PORT``; SLURM and Open MPI export their own
    names, which are translated the way mmengine's ``init_dist`` does.

    Args:
        launcher (str): One of ``'pytorch'``, ``'slurm'``, ``'mpi'``.
        env (Mapping[str, str], optional): The environment to read. Defaults
            to ``os.environ``.
        port (int, optional): Master port for SLURM (overrides
            ``MASTER_PORT``). Defaults to None.

    Returns:
        dict: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
        ``MASTER_PORT`` as strings.

    Example:
        >>> env = dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
        ...            SLURM_NODELIST='node[1-2]', MASTER_ADDR='node1')
        >>> dist_env_from_launcher('slurm', env)['RANK']
        '3'
    """
    env = os.environ if env is None else env
    if launcher == 'pytorch':
        names = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                 'MASTER_PORT')
        return {name: _require_env(env, name, launcher) for name in names}
    if launcher == 'slurm':
        rank = _require_env(env, 'SLURM_PROCID', launcher)
        world_size = _require_env(env, 'SLURM_NTASKS', launcher)
        node_list = _require_env(env, 'SLURM_NODELIST', launcher)
        # Without SLURM_LOCALID every task is on its own node.
        local_rank = env.get('SLURM_LOCALID', '0')
        if port is not None:
            master_port = str(port)
        else:
            master_port = env.get('MASTER_PORT', DEFAULT_MASTER_PORT)
        master_addr = env.get('MASTER_ADDR') or _first_slurm_host(node_list)
        return dict(
            RANK=rank,
            LOCAL_RANK=local_rank,
            WORLD_SIZE=world_size,
            MASTER_ADDR=master_addr,
            MASTER_PORT=master_port)
    if launcher == 'mpi':
        return dict(
            RANK=_require_env(env, 'OMPI_COMM_WORLD_RANK', launcher),
            LOCAL_RANK=_require_env(env, 'OMPI_COMM_WORLD_LOCAL_RANK',
                                    launcher),
            WORLD_SIZE=_require_env(env, 'OMPI_COMM_WORLD_SIZE', launcher),
            MASTER_ADDR=_require_env(env, 'MASTER_ADDR', launcher),
            MASTER_PORT=env.get('MASTER_PORT', DEFAULT_MASTER_PORT))
    raise ConfigError(f'Unknown launcher {launcher!r}: expected one of '
                      f'{LAUNCHERS} (or "none" for a single process).')


def init_cpu_dist(launcher: str,
                  backend: str = 'gloo',
                  timeout: Optional[float] = None,
                  port: Optional[int] = None,
                  **kwargs) -> str:
    """Create the default process group on CPU without touching CUDA.

    Args:
        launcher (str): One of ``'pytorch'``, ``'slurm'``, ``'mpi'``.
        backend (str): A backend that works on CPU tensors, ``'gloo'`` or
            ``'mpi'``. ``'nccl'`` (the GPU default of the configs) is
            replaced by ``'gloo'`` with a log message. Defaults to ``'gloo'``.
        timeout (float, optional): Collective timeout in seconds, as in
            mmengine's ``dist_cfg``. Defaults to None (torch's default).
        port (int, optional): Master port for the SLURM launcher, as in
            mmengine's ``dist_cfg``. Defaults to None.
        **kwargs: Other ``dist_cfg`` keys passed on to
            ``torch.distributed.init_process_group``.

    Returns:
        str: The backend of the default process group.

    Example:
        >>> # inside a process started by torchrun on a CPU-only machine
        >>> init_cpu_dist('pytorch')  # doctest: +SKIP
    """
    if torch_dist.is_initialized():
        return torch_dist.get_backend()
    if backend not in CPU_BACKENDS:
        print_log(
            f"dist_cfg.backend='{backend}' cannot run on CPU; using 'gloo'.",
            logger='current')
        backend = 'gloo'
    kwargs.pop('init_backend', None)
    dist_env = dist_env_from_launcher(launcher, port=port)
    # torch's env:// rendezvous reads these; SLURM/MPI only set their own.
    os.environ.update(dist_env)
    if timeout is not None:
        try:
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        except TypeError as err:
            raise ConfigTypeError(
                'env_cfg.dist_cfg.timeout must be a number of '
                f'seconds, got {timeout!r}') from err
    torch_dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(dist_env['RANK']),
        world_size=int(dist_env['WORLD_SIZE']),
        **kwargs)
    print_log(
        f'Initialised a {backend} process group on CPU: rank '
        f"{dist_env['RANK']} of {dist_env['WORLD_SIZE']} (launcher "
        f"'{launcher}').",
        logger='current')
    return backend


def cpu_model_wrapper_cfg(cfg: Config) -> ConfigDict:
    """Return ``model_wrapper_cfg`` with ``device_ids=None`` for CPU DDP.

    Without a ``model_wrapper_cfg`` the Runner would build
    ``MMDistributedDataParallel(device_ids=[LOCAL_RANK], broadcast_buffers=
    False, find_unused_parameters=cfg.find_unused_parameters)``; the same
    wrapper is configured here with ``device_ids=None``. A user-given wrapper
    of a ``DistributedDataParallel`` type keeps its other options and gets
    ``device_ids=None`` (the Runner only *defaults* ``device_ids``, so an
    explicit ``None`` wins).

    Args:
        cfg (Config): The full run config.

    Returns:
        ConfigDict: The wrapper config to store as ``cfg.model_wrapper_cfg``.

    Example:
        >>> from mmengine.config import Config
        >>> cfg = Config(dict(find_unused_parameters=False))
        >>> cpu_model_wrapper_cfg(cfg)['device_ids'] is None
        True
    """
    from mmpretrain.registry import MODEL_WRAPPERS

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        return ConfigDict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg = ConfigDict(wrapper_cfg)
    wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = wrapper_cfg['type']
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if isinstance(wrapper_type, type) and issubclass(wrapper_type,
                                                     DistributedDataParallel):
        wrapper_cfg['device_ids'] = None
    return wrapper_cfg


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a distributed run on CPU before the Runner is built.

    When ``cfg.launcher`` is not ``'none'`` and mmengine found no
    accelerator, this creates the gloo process group, records
    ``backend='gloo'`` in ``cfg.env_cfg.dist_cfg`` and sets
    ``cfg.model_wrapper_cfg`` for DDP on CPU. Otherwise it does nothing, so
    GPU runs keep the standard mmengine path (nccl, ``cuda:LOCAL_RANK``).

    Args:
        cfg (Config): The run config, after the command line was merged.

    Returns:
        bool: True if a CPU process group was set up.

    Example:
        >>> from mmengine.config import Config
        >>> setup_cpu_distributed(Config(dict(launcher='none')))
        False
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or not is_cpu_only():
        return False
    env_cfg = cfg.get('env_cfg', None) or ConfigDict()
    dist_cfg = ConfigDict(env_cfg.get('dist_cfg', None) or {})
    backend = init_cpu_dist(
        launcher, backend=dist_cfg.pop('backend', 'gloo'), **dist_cfg)
    env_cfg['dist_cfg'] = ConfigDict(dist_cfg, backend=backend)
    cfg.env_cfg = env_cfg
    cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg)
    return True
