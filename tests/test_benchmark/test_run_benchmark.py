"""vapt_mm.benchmark.run_benchmark: rows built from a config file, the JSON
written, and the requests it refuses. No test asserts a timing."""
import json

import pytest
from benchmark_result_checks import check_result
from mmpretrain.registry import MODELS

from vapt_mm.benchmark import run_benchmark


# A backbone unlike the 'tiny' preset (width, depth, image size), so a test
# can tell which backbone a row was built from.
CONFIG_BACKBONE = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
    img_size=24,
    patch_size=8)


def test_run_benchmark_from_config_file(tmp_path):
    config = tmp_path / 'tiny_vpt-deep.py'
    config.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['vapt_mm'], "
        'allow_failed_imports=False)\n'
        f'model = dict(type=\'PromptedClassifier\', '
        f'backbone={CONFIG_BACKBONE!r}, '
        "neck=dict(type='VPTNeck', num_tokens=3, deep=True), "
        "head=dict(type='LinearClsHead', num_classes=5, in_channels=32))\n")
    out = tmp_path / 'result' / 'bench.json'
    result = run_benchmark(
        configs=[str(config)],
        warmup=1,
        repeats=2,
        batch_size=2,
        infer_batch_size=3,
        threads=1,
        out=str(out),
        command='benchmark test')

    labels = ['bare', 'tiny_vpt-deep']
    check_result(result, labels, repeats=2, batch_size=2)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result['command'] == 'benchmark test'
    bare, prompted = result['rows']
    # both rows run the config's backbone at its image size
    backbone = MODELS.build(CONFIG_BACKBONE)
    assert bare['params_total'] == sum(
        p.numel() for p in backbone.parameters())
    assert bare['img_size'] == prompted['img_size'] == [24, 24]
    assert prompted['params_trained'] == 3 * 3 * 32 + 32 * 5 + 5
    assert prompted['infer_batch_size'] == 3
    assert prompted['config'] == str(config)


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match='config files or named methods'):
        run_benchmark(methods=['vapt:4'], configs=['a.py'])
    with pytest.raises(FileNotFoundError, match='missing.py'):
        run_benchmark(configs=[str(tmp_path / 'missing.py')], batch_size=2)
    with pytest.raises(ValueError, match="Baseline row 'vpt-deep:4'"):
        run_benchmark(['vapt:4'],
                      backbone='tiny',
                      batch_size=2,
                      baseline='vpt-deep:4')
