"""Close the default process group when a distributed tool is done."""
import torch.distributed as torch_dist
from mmengine.logging import print_log

__all__ = ['shutdown_distributed']


def shutdown_distributed() -> bool:
    """Wait for every rank, then destroy the default process group.

    mmengine's Runner never destroys the process group it works in. Left to
    the interpreter's exit, the gloo backend's threads can be torn down
    while a peer still talks to them, and one rank dies with ``terminate
    called without an active exception`` (SIGABRT) after a run that
    finished well, so ``torchrun`` reports the job as failed. A barrier
    first (no rank leaves while another one still writes its files or
    runs a collective), then ``destroy_process_group`` on every rank, makes
    the end orderly; NCCL asks for the same.

    Call it only on the success path: after an error on one rank the
    others may never reach the barrier, and the launcher stops them anyway.

    Returns:
        bool: True when a process group was closed, False when the process
        ran without one.

    Example:
        >>> from vapt_mm.engine.dist_shutdown import shutdown_distributed
        >>> shutdown_distributed()  # a single process: nothing to close
        False
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return False
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    print_log('Closed the distributed process group.', logger='current')
    return True
