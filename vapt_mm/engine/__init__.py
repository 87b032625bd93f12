# checkpoint_loading lets torch>=2.6 (weights_only=True) load the checkpoints
# mmengine's Runner writes, through an allow-list of their globals;
# checkpoint_integrity names damaged checkpoint files when they are loaded;
# atomic_backend registers the 'atomic_local' file backend.
from . import (atomic_backend, auto_resume, checkpoint_integrity,  # noqa: F401
               checkpoint_loading, hooks, optim)
