"""The VAPT and VPT configs in mmpretrain's model index.

``model-index.yml`` at the repository root imports ``configs/vapt/
metafile.yml`` and ``configs/vpt/metafile.yml`` (written by
``tools/misc/generate_metafiles.py``), in the format of mmpretrain's own
index. Importing :mod:`vapt_mm` registers it in mmpretrain's ``ModelHub``,
so the names work wherever mmpretrain takes a model name::

    mmpretrain.list_models('*vapt*')
    get_model('vapt_vit-b16_vtab-eurosat', pretrained='eurosat.safetensors')
    inference_model('vapt_vit-b16_vtab-eurosat', 'img.png',
                    pretrained='eurosat.safetensors')

No entry names published weights: the prompts are trained by the user
(``pretrained`` is a prompt file or a checkpoint). The index is read from
the source tree (an editable install, ``pip install -e .``); an install
without the configs registers nothing.

Parsing the index takes a few tenths of a second, so importing vapt_mm does
not do it: :func:`register_model_index_lazily` makes mmpretrain's
``ModelHub`` parse it the first time it is asked for a name
(``list_models``, ``get_model``, ``inference_model``, the inferencers), as
it does with mmpretrain's own index.
"""
import os.path as osp
from typing import List, Optional, Set

from mmengine.logging import print_log

__all__ = [
    'MODEL_INDEX', 'register_model_index', 'register_model_index_lazily',
    'registered_model_indexes'
]

#: The repository's model index (beside the ``vapt_mm`` package).
MODEL_INDEX = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'model-index.yml')

_registered: Set[str] = set()


def register_model_index(model_index: Optional[str] = None,
                         config_prefix: Optional[str] = None) -> List[str]:
    """Register a model index in mmpretrain's ``ModelHub``, once.

    Args:
        model_index (str, optional): The ``model-index.yml`` (or a
            ``metafile.yml``). Defaults to :data:`MODEL_INDEX`; when that
            file does not exist (an install without the source tree),
            nothing is registered.
        config_prefix (str, optional): The folder the ``Config`` paths of
            the entries are relative to. Defaults to the index's folder.

    Returns:
        list[str]: The names registered by this call (empty when the index
        was registered before or does not exist).

    Raises:
        ValueError: A name is already taken by another index (mmpretrain's
            own check).

    Example:
        >>> import mmpretrain
        >>> _ = register_model_index()
        >>> 'vapt_vit-b16_vtab-eurosat' in mmpretrain.list_models('vapt*')
        True
    """
    from mmpretrain.apis.model import ModelHub
    path = osp.abspath(model_index or MODEL_INDEX)
    if path in _registered:
        return []
    if not osp.isfile(path):
        if model_index is not None:
            from ..utils.user_errors import MissingFileError
            raise MissingFileError(f'Model index {path} does not exist.')
        print_log(
            f'vapt_mm: no model index at {path} (not a source checkout); '
            'the VAPT/VPT config names are not registered in mmpretrain.',
            logger='current',
            level=10)
        return []
    before = set(ModelHub._models_dict)
    ModelHub.register_model_index(
        path, config_prefix=config_prefix or osp.dirname(path))
    _registered.add(path)
    return sorted(set(ModelHub._models_dict) - before)


def registered_model_indexes() -> List[str]:
    """The model-index files registered so far.

    Example:
        >>> registered_model_indexes()  # doctest: +SKIP
        ['/src/vapt_mm/model-index.yml']
    """
    return sorted(_registered)


def register_model_index_lazily() -> bool:
    """Register :data:`MODEL_INDEX` when ``ModelHub`` first needs names.

    mmpretrain's ``ModelHub`` registers its own index on first use (in
    ``ModelHub._register_mmpretrain_models``, called by ``ModelHub.get`` and
    ``list_models``); this wraps that step so it registers ours right
    after. Idempotent. Where the hook point does not exist (another
    mmpretrain), the index is registered now.

    Returns:
        bool: Whether registration was deferred.

    Example:
        >>> register_model_index_lazily()
        True
    """
    from mmpretrain.apis.model import ModelHub
    hook = ModelHub.__dict__.get('_register_mmpretrain_models')
    if not isinstance(hook, classmethod):
        register_model_index()
        return False
    original = hook.__func__
    if getattr(original, '_vapt_mm_wrapped', False):
        return True

    def _register_mmpretrain_and_vapt_models(cls) -> None:
        original(cls)
        register_model_index()

    _register_mmpretrain_and_vapt_models._vapt_mm_wrapped = True
    ModelHub._register_mmpretrain_models = classmethod(
        _register_mmpretrain_and_vapt_models)
    return True
