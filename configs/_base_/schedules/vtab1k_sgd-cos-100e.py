# The VTAB-1k training protocol of VPT / VAPT: SGD with momentum 0.9,
# 100 epochs, 10 epochs of linear warm-up then cosine decay to 0.
#
# `lr` below is the *base* learning rate, i.e. the rate for a total batch of
# 256 images. auto_scale_lr is enabled, so the Runner trains with
#     lr = base_lr * (num_processes * batch_size) / 256
# (batch 64 on one GPU: 0.25 * base_lr). Set auto_scale_lr.enable=False to
# use `lr` as written.
#
# Defaults: base_lr 1.0, weight decay 1e-3 (the VPT authors' setting for
# eurosat). The published protocol picks base_lr from
# {50, 25, 10, 5, 2.5, 1, 0.5, 0.25, 0.1, 0.05} and weight decay from
# {0.01, 0.001, 0.0001, 0} on train800 -> val200, e.g.
#     --cfg-options optim_wrapper.optimizer.lr=2.5 \
#                   optim_wrapper.optimizer.weight_decay=1e-4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1.0, momentum=0.9, weight_decay=1e-3))

auto_scale_lr = dict(base_batch_size=256, enable=True)

# Changing max_epochs? Change `end`/`T_max`/`begin` below with it.
param_scheduler = [
    # linear warm-up, updated every iteration
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    # cosine decay to 0 over the remaining epochs, updated every iteration
    dict(
        type='CosineAnnealingLR',
        T_max=90,
        eta_min=0.0,
        by_epoch=True,
        begin=10,
        end=100,
        convert_to_iter_based=True),
]

# The model of the last epoch is the one reported. Validation every 10
# epochs keeps evaluation cheap (VTAB-1k test sets hold up to 26k images).
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
