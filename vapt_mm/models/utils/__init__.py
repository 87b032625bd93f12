"""What the model code is made of (as mmpretrain's ``models/utils``): the
prompted block loop, the prompt key/value attention of the fast path, the
block loop of a batch mixing several tasks' prompts, and the check of
pretrained backbone files."""
from .multi_task_forward import (MixedBlockStep, TaskGroup, plan_mixed_blocks,
                                 run_backbone_multi_task, slot_key_mask)
from .pretrained_check import check_pretrained_checkpoint
from .prompt_kv_attention import (BlockParts, StaticPromptKVCache,
                                  block_with_prompt_kv, prompt_key_values,
                                  vit_block_parts)
from .prompted_forward import (BlockStep, fast_step, insert_prompts,
                               plain_step, plan_blocks, remove_prompts,
                               run_backbone)

__all__ = [
    'check_pretrained_checkpoint', 'BlockParts', 'StaticPromptKVCache',
    'block_with_prompt_kv', 'prompt_key_values', 'vit_block_parts',
    'BlockStep', 'fast_step', 'insert_prompts', 'plain_step', 'plan_blocks',
    'remove_prompts', 'run_backbone', 'TaskGroup', 'MixedBlockStep',
    'plan_mixed_blocks', 'slot_key_mask', 'run_backbone_multi_task'
]
