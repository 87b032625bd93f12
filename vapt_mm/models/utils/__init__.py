"""What the prompted forward is made of (as mmpretrain's ``models/utils``):
the block loop and the prompt key/value attention of the fast path."""
from .prompt_kv_attention import (BlockParts, StaticPromptKVCache,
                                  block_with_prompt_kv, prompt_key_values,
                                  vit_block_parts)
from .prompted_forward import (BlockStep, fast_step, insert_prompts,
                               plain_step, plan_blocks, remove_prompts,
                               run_backbone)

__all__ = [
    'BlockParts', 'StaticPromptKVCache', 'block_with_prompt_kv',
    'prompt_key_values', 'vit_block_parts', 'BlockStep', 'fast_step',
    'insert_prompts', 'plain_step', 'plan_blocks', 'remove_prompts',
    'run_backbone'
]
