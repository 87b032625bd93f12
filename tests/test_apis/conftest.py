import os
import sys

import pytest
import torch

# apis_test_utils lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from apis_test_utils import write_backbone  # noqa: E402


@pytest.fixture(scope='session')
def backbones(tmp_path_factory) -> dict:
    """Two different tiny pretrained backbones: 'a' and 'b'."""
    root = tmp_path_factory.mktemp('backbones')
    return dict(
        a=write_backbone(root / 'vit_a.pth', seed=1),
        b=write_backbone(root / 'vit_b.pth', seed=2))


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
