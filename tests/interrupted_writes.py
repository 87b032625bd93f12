"""Simulated failures in the middle of writing a file, for the tests that
check a writer leaves the old file intact and no temporary file behind."""
import io
import os


class SimulatedWriteError(OSError):
    """Raised by the stand-ins below (like a full disk)."""


def writes_half_then_fails(real):
    """A stand-in for ``json.dump`` / ``torch.save`` (``real``): writes the
    first half of what ``real`` would write, then raises.

    Works whether the writer passes an open file or a path, so a writer that
    writes straight into its target is caught too.
    """

    def fake(obj, f, *args, **kwargs):
        text = isinstance(f, io.TextIOBase)
        buffer = io.StringIO() if text else io.BytesIO()
        real(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        if isinstance(f, (str, os.PathLike)):
            with open(f, 'wb') as target:
                target.write(data[:len(data) // 2])
        else:
            f.write(data[:len(data) // 2])
            f.flush()
        raise SimulatedWriteError('disk full (simulated)')

    return fake


def failing_fsync(fd):
    """A stand-in for ``os.fsync``: the data were written, the flush to
    disk fails."""
    raise SimulatedWriteError('disk full at fsync (simulated)')


def snapshot(folder):
    """{file name: bytes} of every file in ``folder`` (hidden ones too)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                out[name] = f.read()
    return out
