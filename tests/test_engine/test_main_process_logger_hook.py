"""MainProcessLoggerHook: the test-metrics file is written by the main
process alone, with what mmengine's LoggerHook writes."""
import json
import os
import os.path as osp

from engine_test_utils import make_runner

from vapt_mm.engine.hooks import MainProcessLoggerHook
from vapt_mm.engine.hooks import main_process_logger_hook


def test_only_the_main_process_writes_the_test_metrics(tmp_path,
                                                        monkeypatch):
    runner = make_runner(str(tmp_path), train=False, test=True)
    runner.test()  # mmengine's LoggerHook writes <timestamp>.json
    path = osp.join(runner.log_dir, f'{runner.timestamp}.json')
    with open(path) as f:
        expected = json.load(f)
    assert 'time' in expected
    os.remove(path)

    hook = MainProcessLoggerHook()
    hook.before_run(runner)
    monkeypatch.setattr(main_process_logger_hook, 'is_main_process',
                        lambda: False)
    hook.after_test_epoch(runner)
    assert not osp.exists(path)  # another rank: nothing written

    monkeypatch.setattr(main_process_logger_hook, 'is_main_process',
                        lambda: True)
    hook.after_test_epoch(runner)
    with open(path) as f:
        assert json.load(f) == expected


def test_default_runtime_uses_it():
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                 'default_runtime.py'))
    assert cfg.default_hooks.logger.type == 'MainProcessLoggerHook'
