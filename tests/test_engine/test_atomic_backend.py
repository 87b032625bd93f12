"""AtomicLocalBackend: mmengine's LocalBackend with atomic put/put_text."""
import os

import pytest
from mmengine.fileio import get_file_backend

from vapt_mm.engine.atomic_backend import (ATOMIC_LOCAL_BACKEND,
                                           AtomicLocalBackend)


class Unencodable(str):
    """A str whose encode() fails, as a disk error would, mid-write."""

    def encode(self, *args, **kwargs):
        raise OSError(28, 'No space left on device (simulated)')


def test_selected_by_backend_args(tmp_path):
    backend = get_file_backend(
        str(tmp_path), backend_args=dict(backend=ATOMIC_LOCAL_BACKEND))
    assert type(backend) is AtomicLocalBackend


def test_put_and_put_text_write_the_file(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / 'sub' / 'file.bin'
    backend.put(b'\x00\x01data', target)
    assert target.read_bytes() == b'\x00\x01data'
    backend.put_text('grüße', str(tmp_path / 'text.txt'))
    assert (tmp_path / 'text.txt').read_text(encoding='utf-8') == 'grüße'
    backend.put_text('é', str(tmp_path / 'latin.txt'), encoding='latin-1')
    assert (tmp_path / 'latin.txt').read_bytes() == b'\xe9'
    assert sorted(os.listdir(tmp_path)) == [
        'latin.txt', 'sub', 'text.txt'
    ]  # no temporary files left


def test_failed_write_keeps_the_old_file(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / 'last_checkpoint'
    backend.put_text('old', str(target))
    with pytest.raises(OSError, match='No space left'):
        backend.put_text(Unencodable('new'), str(target))
    assert target.read_text() == 'old'
    assert os.listdir(tmp_path) == ['last_checkpoint']
