# VPT-deep, ViT-B/16 (ImageNet-21k), VTAB-1k eurosat (10 classes), the VPT
# authors' setting: p = 100 prompts per block, prompt dropout 0.1, batch 64,
# SGD base lr 1.0 / weight decay 1e-3 (lr = base_lr * 64 / 256), 100 epochs.
# Tuned parameters: 12 * 100 * 768 prompts + 7,690 head = 929,290.
_base_ = [
    '../_base_/models/vit-b16_vpt-deep.py',
    '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_sgd-cos-100e.py',
    '../_base_/default_runtime.py',
]

task = 'eurosat'
model = dict(
    neck=dict(num_tokens=100, deep=True, dropout=0.1),
    head=dict(num_classes=10))

train_dataloader = dict(batch_size=64, dataset=dict(task=task))
val_dataloader = dict(batch_size=64, dataset=dict(task=task))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1.0, weight_decay=1e-3))
