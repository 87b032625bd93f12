"""vapt_mm.benchmark.case_builders: the bare row and the rows of a config."""
import torch

from vapt_mm.benchmark import (BACKBONE_PRESETS, build_bare_case,
                               build_config_cases)


def test_bare_row_backpropagates_to_the_input():
    case = build_bare_case(BACKBONE_PRESETS['tiny'], batch_size=2)
    backbone = case.model.backbone
    backward_calls = []
    for index, layer in enumerate(backbone.layers):
        layer.register_full_backward_hook(
            lambda module, grad_in, grad_out, index=index: backward_calls.
            append(index))
    assert case.train_inputs.grad is None
    case.train_step()

    # the backward pass ran through every block, last to first
    assert backward_calls == [1, 0]
    grad = case.train_inputs.grad
    assert grad is not None and grad.shape == (2, 3, 32, 32)
    assert grad.abs().sum() > 0
    # reference: the backbone's own forward, differentiated by autograd,
    # with the same fixed weighting of the outputs
    inputs = case.train_inputs.detach().clone().requires_grad_(True)
    outputs = backbone(inputs)
    assert len(outputs) == len(case.output_weights) == 1
    loss = (outputs[0] * case.output_weights[0]).sum()
    expected, = torch.autograd.grad(loss, inputs)
    torch.testing.assert_close(grad, expected)
    # the backbone is frozen: the step computes no weight gradient
    assert all(p.grad is None for p in backbone.parameters())
    assert case.optimizer is None


def test_config_fast_path_rows(tmp_path):
    config = tmp_path / 'tiny_vapt.py'
    config.write_text(
        "custom_imports = dict(imports=['vapt_mm'])\n"
        'model = dict(type=\'PromptedClassifier\', '
        f'backbone={BACKBONE_PRESETS["tiny"]!r}, '
        "neck=dict(type='VAPTNeck', num_tokens=2), "
        "head=dict(type='LinearClsHead', num_classes=3, in_channels=64))\n")
    cases, backbone = build_config_cases([str(config)],
                                         fast_path_mode='both',
                                         batch_size=2)
    assert [c.label for c in cases] == ['tiny_vapt:fast', 'tiny_vapt:plain']
    assert [c.model.neck.fast_path for c in cases] == [True, False]
    assert backbone == BACKBONE_PRESETS['tiny']
