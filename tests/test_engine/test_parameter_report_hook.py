"""ParameterReportHook and count_parameters."""
import re

import pytest
from engine_test_utils import (LogCapture, log_text, make_runner,
                               tiny_model_cfg)
from mmpretrain.registry import MODELS

from vapt_mm.engine.hooks import ParameterReportHook
from vapt_mm.utils.parameter_count import count_parameters


def _reference_counts(model):
    """Per-component counts straight from named_parameters."""
    counts = {}
    for name, param in model.named_parameters():
        component = name.split('.')[0]
        total, trainable = counts.get(component, (0, 0))
        counts[component] = (total + param.numel(),
                             trainable + param.numel() * param.requires_grad)
    return counts


def test_report_in_training_log(tmp_path):
    runner = make_runner(
        str(tmp_path), custom_hooks=[dict(type='ParameterReportHook')])
    runner.train()
    log = log_text(runner)
    assert 'Parameters of PromptedClassifier:' in log

    expected = _reference_counts(runner.model)
    assert set(expected) == {'backbone', 'neck', 'head'}
    for component, (total, trainable) in expected.items():
        row = re.search(rf'^{component}\s+([\d,]+)\s+([\d,]+)\s+', log,
                        re.MULTILINE)
        assert row, f'no row for {component} in\n{log}'
        assert int(row[1].replace(',', '')) == total
        assert int(row[2].replace(',', '')) == trainable
    assert expected['backbone'][1] == 0

    total = sum(t for t, _ in expected.values())
    trainable = sum(t for _, t in expected.values())
    share = f'{100 * trainable / total:.2f}%'
    assert re.search(rf'^total\s+{total:,}\s+{trainable:,}\s+{share}$', log,
                     re.MULTILINE)
    assert (f'Trainable parameters: {trainable:,} of {total:,} ({share})'
            in log)
    assert 'Backbone parameters left trainable: none' in log


def test_trainable_backbone_parameters_listed_and_collapsed():
    model = MODELS.build(tiny_model_cfg())
    model.backbone.layers[1].requires_grad_(True)
    model.backbone.cls_token.requires_grad_(True)
    counts = count_parameters(model)

    layer1 = sum(p.numel() for p in model.backbone.layers[1].parameters())
    assert counts['trainable_in_backbone'] == [
        ('backbone.cls_token', model.backbone.cls_token.numel()),
        ('backbone.layers.1.*', layer1),
    ]
    expected = _reference_counts(model)
    assert list(counts['components']) == ['backbone', 'neck', 'head']
    for component, (total, trainable) in expected.items():
        assert counts['components'][component] == dict(
            total=total, trainable=trainable)
    assert counts['total'] == sum(p.numel() for p in model.parameters())
    assert counts['trainable'] == sum(
        p.numel() for p in model.parameters() if p.requires_grad)
    assert counts['trainable_percent'] == pytest.approx(
        100 * counts['trainable'] / counts['total'])


def test_report_lists_trainable_backbone_parameters():

    class FakeRunner:
        model = MODELS.build(tiny_model_cfg())

    FakeRunner.model.backbone.ln1.requires_grad_(True)
    with LogCapture() as log:
        ParameterReportHook().before_train(FakeRunner())
    assert ('Backbone parameters left trainable: backbone.ln1.* (128)'
            in log.text), log.text


def test_bad_argument():
    with pytest.raises(TypeError, match='backbone'):
        ParameterReportHook(backbone=None)
