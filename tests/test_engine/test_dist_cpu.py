"""vapt_mm.engine.dist_cpu: launcher environments and the DDP wrapper config
for distributed runs on CPU."""
import pytest
from mmengine.config import Config

from vapt_mm.engine.dist_cpu import (cpu_model_wrapper_cfg,
                                     dist_env_from_launcher,
                                     setup_cpu_distributed)


def test_torchrun_environment_is_read_as_is():
    env = dict(RANK='1', LOCAL_RANK='1', WORLD_SIZE='2',
               MASTER_ADDR='10.0.0.1', MASTER_PORT='29600')
    assert dist_env_from_launcher('pytorch', env) == env


def test_slurm_environment_is_translated():
    env = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
               SLURM_NODELIST='node[3-4]', MASTER_ADDR='node3')
    assert dist_env_from_launcher('slurm', env, port=29700) == dict(
        RANK='5', LOCAL_RANK='1', WORLD_SIZE='8', MASTER_ADDR='node3',
        MASTER_PORT='29700')
    # without a port argument MASTER_PORT, else torch's default 29500
    assert dist_env_from_launcher('slurm', env)['MASTER_PORT'] == '29500'
    env['MASTER_PORT'] = '12345'
    assert dist_env_from_launcher('slurm', env)['MASTER_PORT'] == '12345'


def test_mpi_environment_is_translated():
    env = dict(OMPI_COMM_WORLD_RANK='2', OMPI_COMM_WORLD_LOCAL_RANK='0',
               OMPI_COMM_WORLD_SIZE='4', MASTER_ADDR='host0')
    assert dist_env_from_launcher('mpi', env) == dict(
        RANK='2', LOCAL_RANK='0', WORLD_SIZE='4', MASTER_ADDR='host0',
        MASTER_PORT='29500')


def test_missing_variable_names_it_and_the_launcher():
    env = dict(RANK='0', LOCAL_RANK='0', MASTER_ADDR='x', MASTER_PORT='1')
    with pytest.raises(KeyError, match="WORLD_SIZE.*launcher='pytorch'"):
        dist_env_from_launcher('pytorch', env)
    with pytest.raises(ValueError, match="Unknown launcher 'ray'"):
        dist_env_from_launcher('ray', env)


def test_default_wrapper_is_ddp_without_device_ids():
    cfg = Config(dict(find_unused_parameters=True))
    assert cpu_model_wrapper_cfg(cfg) == dict(
        type='MMDistributedDataParallel', device_ids=None,
        broadcast_buffers=False, find_unused_parameters=True)


def test_user_wrapper_keeps_its_options():
    cfg = Config(
        dict(model_wrapper_cfg=dict(
            type='MMDistributedDataParallel', device_ids=[0],
            detect_anomalous_params=True)))
    assert cpu_model_wrapper_cfg(cfg) == dict(
        type='MMDistributedDataParallel', device_ids=None,
        detect_anomalous_params=True)
    # DDP subclasses get device_ids=None too (the Runner would default them
    # to [LOCAL_RANK])
    cfg = Config(dict(model_wrapper_cfg=dict(
        type='MMSeparateDistributedDataParallel', broadcast_buffers=False)))
    assert cpu_model_wrapper_cfg(cfg) == dict(
        type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
        device_ids=None)
    # other wrappers (no device_ids default from the Runner) are left alone
    cfg = Config(dict(model_wrapper_cfg=dict(
        type='MMFullyShardedDataParallel', use_orig_params=True)))
    assert cpu_model_wrapper_cfg(cfg) == dict(
        type='MMFullyShardedDataParallel', use_orig_params=True)


def test_single_process_config_is_untouched():
    cfg = Config(dict(launcher='none', env_cfg=dict(
        dist_cfg=dict(backend='nccl'))))
    assert setup_cpu_distributed(cfg) is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
