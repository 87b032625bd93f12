"""Use trained prompts: prompt files, loading any weights file, and the
VAPT/VPT names in mmpretrain's model index.

Importing it (``import vapt_mm`` does) registers the prompt-file loader in
mmengine's ``CheckpointLoader`` and, on first use of mmpretrain's
``ModelHub``, the model index.
"""
from .model_index import register_model_index, register_model_index_lazily
from .multi_task import add_prompt_file_task
from .prompt_file import (is_prompt_file, load_prompt_file, read_prompt_file,
                          read_prompt_file_header, save_prompt_file)
from .weights import init_prompted_model, load_weights

__all__ = [
    'save_prompt_file', 'load_prompt_file', 'read_prompt_file',
    'read_prompt_file_header', 'is_prompt_file', 'load_weights',
    'init_prompted_model', 'register_model_index', 'add_prompt_file_task'
]

register_model_index_lazily()
