"""Damaged checkpoint files are named, wherever mmengine loads them."""
import pickle
import struct
import zipfile

import pytest
import torch
from finite_loss_utils import ToyRegressor, toy_runner
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

from vapt_mm.engine.checkpoint_integrity import checkpoint_file_problem
from vapt_mm.utils.user_errors import CheckpointError, UserError


@pytest.fixture
def good(tmp_path) -> str:
    path = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=ToyRegressor().state_dict(),
                    meta=dict(epoch=1)), path)
    return path


def _cut(src: str, dst: str, size: int) -> str:
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:size])
    return dst


def test_sound_file_has_no_problem(good):
    assert checkpoint_file_problem(good) is None


@pytest.mark.parametrize('fraction', [0.0, 0.01, 0.5, 0.99])
def test_truncated_file(tmp_path, good, fraction):
    size = int(len(open(good, 'rb').read()) * fraction)
    path = _cut(good, str(tmp_path / 'cut.pth'), size)
    problem = checkpoint_file_problem(path)
    assert problem.startswith('empty' if size == 0 else 'truncated')


def test_bit_flip_in_the_data_is_corrupt(tmp_path, good):
    data = bytearray(open(good, 'rb').read())
    with zipfile.ZipFile(good) as archive:
        info = next(i for i in archive.infolist() if '/data/' in i.filename)
    # the member's data follows its local header: 30 bytes, then the name
    # and the extra field, whose lengths the header gives
    header = info.header_offset
    name_len, extra_len = struct.unpack('<HH', data[header + 26:header + 30])
    data[header + 30 + name_len + extra_len] ^= 0xFF
    path = str(tmp_path / 'flipped.pth')
    open(path, 'wb').write(bytes(data))
    assert 'does not match its CRC' in checkpoint_file_problem(path)


def test_foreign_files(tmp_path):
    html = tmp_path / 'page.pth'
    html.write_text('<html>404</html>')
    assert checkpoint_file_problem(str(html)).startswith(
        "not a PyTorch checkpoint: it starts with b'<html>40'")
    archive = tmp_path / 'other.zip'
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('readme.txt', 'hello')
    assert 'without the data.pkl' in checkpoint_file_problem(str(archive))


def test_legacy_pickle_format(tmp_path):
    path = str(tmp_path / 'legacy.pth')
    torch.save(dict(w=torch.zeros(3)), path,
               _use_new_zipfile_serialization=False)
    cut = _cut(path, str(tmp_path / 'legacy_cut.pth'), 100)
    # cannot be told without loading; loading's EOFError says it
    assert checkpoint_file_problem(cut) is None
    assert checkpoint_file_problem(cut, EOFError()).startswith('truncated')
    with pytest.raises(CheckpointError, match='legacy-format'):
        _load_checkpoint(cut, map_location='cpu')


def _assert_names_file(error: CheckpointError, path: str) -> None:
    message = str(error)
    assert isinstance(error, UserError)
    assert message.startswith('the checkpoint file is unreadable: truncated')
    assert f'where: {path}' in message
    assert '--resume without a path skips unreadable ones' in message


def test_every_mmengine_loading_path_names_the_file(tmp_path, good):
    cut = _cut(good, str(tmp_path / 'epoch_1.pth'), 300)
    # the loader behind load_from, --resume PATH, tools/test.py
    with pytest.raises(CheckpointError) as info:
        _load_checkpoint(cut, map_location='cpu')
    _assert_names_file(info.value, cut)
    # init_cfg=dict(type='Pretrained', checkpoint=...) and the Python API
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(ToyRegressor(), cut)
    _assert_names_file(info.value, cut)
    # Runner: load_from and resume
    runner = toy_runner(str(tmp_path / 'load'), load_from=cut)
    with pytest.raises(CheckpointError) as info:
        runner.train()
    _assert_names_file(info.value, cut)
    runner = toy_runner(str(tmp_path / 'resume'), load_from=cut, resume=True)
    with pytest.raises(CheckpointError) as info:
        runner.train()
    _assert_names_file(info.value, cut)


class NotAllowListed:
    """A class torch's weights_only unpickler refuses."""


def test_other_failures_keep_their_exception(tmp_path):
    path = str(tmp_path / 'object.pth')
    torch.save(dict(obj=NotAllowListed()), path)
    # a sound file that weights_only=True refuses: not called damaged
    with pytest.raises(pickle.UnpicklingError) as info:
        _load_checkpoint(path, map_location='cpu')
    assert not isinstance(info.value, CheckpointError)
    with pytest.raises(FileNotFoundError):
        _load_checkpoint(str(tmp_path / 'missing.pth'))
