from . import backbones, classifiers, necks  # noqa: F401
