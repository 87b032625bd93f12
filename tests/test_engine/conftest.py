import os
import sys

import pytest

# engine_test_utils lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def pretrained_backbone(tmp_path_factory) -> str:
    """A tiny ViT's weights saved as a plain state dict (the 'pretrained'
    backbone the tests' models load through init_cfg)."""
    from engine_test_utils import write_pretrained_backbone
    path = tmp_path_factory.mktemp('pretrained') / 'tiny_vit.pth'
    return write_pretrained_backbone(str(path))
