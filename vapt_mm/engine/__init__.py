# checkpoint_loading lets torch>=2.6 (weights_only=True) load the checkpoints
# mmengine's Runner writes, through an allow-list of their globals.
from . import checkpoint_loading, hooks, optim  # noqa: F401
