"""What the prompted forward is made of (as mmpretrain's ``models/utils``):
the block loop, the prompt key/value attention of the fast path and the
block loop of a batch mixing several tasks' prompts."""
from .multi_task_forward import (MixedBlockStep, TaskGroup, plan_mixed_blocks,
                                 run_backbone_multi_task, slot_key_mask)
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
    'run_backbone', 'TaskGroup', 'MixedBlockStep', 'plan_mixed_blocks',
    'slot_key_mask', 'run_backbone_multi_task'
]
