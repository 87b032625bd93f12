# Runtime settings shared by every vapt_mm config (mmpretrain's defaults,
# plus the vapt_mm plugin import and a fixed seed).

# registries: mmpretrain's, with vapt_mm's parts registered into them
default_scope = 'mmpretrain'
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)

default_hooks = dict(
    # time every iteration
    timer=dict(type='IterTimerHook'),
    # log every 10 iterations (a VTAB-1k epoch is 16 iterations at batch 64);
    # mmengine's LoggerHook, except that in a distributed test only the main
    # process writes the metrics file (every rank did, garbling it)
    logger=dict(type='MainProcessLoggerHook', interval=10),
    # step the learning-rate schedule
    param_scheduler=dict(type='ParamSchedulerHook'),
    # save a checkpoint every epoch, keep the 3 newest (and always the last);
    # AtomicCheckpointHook is mmengine's CheckpointHook writing each file
    # through a temporary file and a rename, and removing the oldest only
    # after the new one is written
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    # stop with an error (epoch, iteration, learning rate) as soon as the
    # loss or a trained weight is NaN or infinite, before any checkpoint of
    # that state is written (docs/training.md#diverging-runs)
    finite_loss=dict(type='FiniteLossHook'),
    # reseed the sampler every epoch in distributed runs
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # draw predictions on validation images (off; --show-dir turns it on)
    visualization=dict(type='VisualizationHook', enable=False),
)

# vapt_mm hooks:
# * ParameterReportHook logs total / trainable parameters per component;
# * FrozenWeightGuardHook fails the run if a frozen weight changes;
# * TrainableCheckpointHook writes checkpoints without the frozen backbone
#   (prompts + head + optimizer state: kB instead of ~330 MB for ViT-B);
#   PromptedClassifier restores the backbone from its Pretrained init_cfg
#   when such a checkpoint is loaded (resume, tools/test.py, with or without
#   the hook) and checks it is the one trained on, so that file must stay
#   where the config says. For full checkpoints, set in your config
#   custom_hooks = [dict(type='ParameterReportHook'),
#                   dict(type='FrozenWeightGuardHook')]
custom_hooks = [
    dict(type='ParameterReportHook'),
    dict(type='FrozenWeightGuardHook'),
    dict(type='TrainableCheckpointHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # GPU runs use nccl; tools/train.py and tools/test.py switch to gloo when
    # a distributed launcher starts them on a machine without a GPU.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'

# load weights from this checkpoint (not a resume; see `resume`)
load_from = None
# resume the whole training state from `load_from` or, if that is None, from
# the latest checkpoint in work_dir (tools/train.py --resume [PATH])
resume = False

# the first of the five VTAB-1k seeds (42, 44, 82, 100, 800); override with
# --cfg-options randomness.seed=44
randomness = dict(seed=42, deterministic=False)
