"""vapt_mm.benchmark.method_specs: method names and their model configs."""
import pytest

from vapt_mm.benchmark import (BACKBONE_PRESETS, method_model_cfg,
                               parse_methods)


def test_method_names_and_model_configs():
    specs = parse_methods(
        ['bare', 'full', 'vpt-shallow:10', 'vpt-deep:100:plain', 'vapt:10'],
        fast_path_mode='both')
    assert [s.label for s in specs] == [
        'bare', 'full', 'vpt-shallow:10:fast', 'vpt-shallow:10:plain',
        'vpt-deep:100:plain', 'vapt:10:fast', 'vapt:10:plain'
    ]
    backbone = BACKBONE_PRESETS['vit-b16']
    cfgs = [method_model_cfg(s, backbone, 768, 10) for s in specs]
    assert 'head' not in cfgs[0] and 'neck' not in cfgs[0]
    assert cfgs[1]['freeze_backbone'] is False and 'neck' not in cfgs[1]
    assert cfgs[3]['neck'] == dict(
        type='VPTNeck', num_tokens=10, fast_path=False)
    assert cfgs[4]['neck'] == dict(
        type='VPTNeck', num_tokens=100, deep=True, fast_path=False)
    assert cfgs[5]['neck'] == dict(
        type='VAPTNeck', num_tokens=10, fast_path=True)
    assert cfgs[5]['head']['in_channels'] == 768
    # without a mode or suffix the neck keeps its own default
    plain, = parse_methods(['vapt:10'])
    assert 'fast_path' not in method_model_cfg(plain, backbone, 768, 10)[
        'neck']
    auto, = parse_methods(['vapt:10'], fast_path_mode='auto')
    assert method_model_cfg(auto, backbone, 768, 10)['neck'][
        'fast_path'] is None

    with pytest.raises(ValueError, match=r"Unknown benchmark method 'vapt'"
                       r'.*vapt:<p>'):
        parse_methods(['vapt'])
    with pytest.raises(ValueError, match="unknown suffix 'turbo'"):
        parse_methods(['vpt-deep:10:turbo'])
    with pytest.raises(ValueError, match='more than once'):
        parse_methods(['vapt:10', 'vapt:10'])
    with pytest.raises(ValueError, match="Unknown fast-path mode 'fastest'"):
        parse_methods(['vapt:10'], fast_path_mode='fastest')
