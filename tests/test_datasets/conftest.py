"""Tiny VTAB-1k / FGVC copies in the real layout, written per test."""
import pytest

from vapt_mm.datasets.toy_data import make_toy_fgvc, make_toy_vtab1k

#: Small split sizes for dataset tests (the checker tests use real sizes).
SMALL_VTAB_SIZES = dict(train800=12, val200=5, test=7)


@pytest.fixture
def vtab_root(tmp_path):
    """A toy VTAB-1k root with eurosat (10 classes) and kitti (4 classes)."""
    return make_toy_vtab1k(str(tmp_path / 'vtab-1k'),
                           tasks=('eurosat', 'kitti'),
                           sizes=SMALL_VTAB_SIZES)


@pytest.fixture
def fgvc_root(tmp_path):
    """A toy FGVC root with Oxford Flowers (102 classes, ids 1, 3, 5, ...),
    2 train / 1 val / 1 test image per class."""
    return make_toy_fgvc(str(tmp_path / 'fgvc'),
                         datasets=('oxfordflower', ),
                         per_class=dict(train=2, val=1, test=1))
