from . import hooks, optim  # noqa: F401
