"""Gathering per-example values across data-parallel processes.

Instance weights couple the examples of a mini-batch, so under data
parallelism they must be computed on the *global* batch.  Every process
gathers the detached per-example losses of all processes (a few bytes per
example), computes the same weights, and keeps its own slice.  Only
``torch.distributed`` collectives on already-detached tensors are used; no
gradient flows through the gather.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "gather_batch", "check_equal_sizes"]


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def _all_gather(out: torch.Tensor, x: torch.Tensor, group) -> None:
    gather = getattr(dist, "all_gather_single", None)  # newer name of all_gather_into_tensor
    if gather is None:  # pragma: no cover - older torch
        gather = dist.all_gather_into_tensor
    gather(out, x, group=group)


def check_equal_sizes(n: int, *, device=None, group=None) -> None:
    """Raise ``ValueError`` unless every process of ``group`` passes the same ``n``.

    This is a collective call (every process must make it) and reads the
    gathered sizes on the host, i.e. it synchronises with the device once.

    Parameters
    ----------
    n : int
        This process's number of examples.
    device : torch.device, optional
        Device of the communication buffer (CPU for gloo, the process's GPU
        for NCCL).  Default: CPU.
    group : ProcessGroup, optional
        Default: the world.
    """
    world = dist.get_world_size(group)
    mine = torch.tensor([int(n)], dtype=torch.int64, device=device)
    sizes = torch.empty(world, dtype=torch.int64, device=device)
    _all_gather(sizes, mine, group)
    sizes = sizes.tolist()
    if any(s != sizes[0] for s in sizes):
        raise ValueError(
            "ReweightedLoss(distributed=True) needs the same number of examples on every process "
            f"(the weights are computed on the concatenated batch); got shard sizes {sizes} on ranks "
            f"0..{world - 1}. Use equal per-process batch sizes, e.g. DistributedSampler with drop_last=True "
            "and a DataLoader with drop_last=True."
        )


def gather_batch(x: torch.Tensor, *, group=None, check_sizes: bool = True):
    """All-gather ``x`` along its first axis over the processes of ``group``.

    Parameters
    ----------
    x : torch.Tensor, shape (n, ...)
        This process's shard; detached first (no gradient crosses processes).
    group : ProcessGroup, optional
        Default: the world.
    check_sizes : bool, default True
        Check first that every process has the same ``n`` and raise a clear
        ``ValueError`` otherwise (a mismatched gather aborts or hangs the
        processes).  The check costs one small collective and one host
        synchronisation; pass ``False`` when equal shard sizes are guaranteed.

    Returns
    -------
    gathered : torch.Tensor, shape (world_size * n, ...)
        Shards in rank order.
    rank, world_size : int
        This process's rank in ``group`` and the group size; this process's
        rows are ``gathered[rank * n:(rank + 1) * n]``.

    Notes
    -----
    Without an initialised process group, returns ``(x.detach(), 0, 1)``.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.distributed import gather_batch
    >>> gathered, rank, world = gather_batch(torch.tensor([0.5, 1.5]))  # single process
    >>> gathered, rank, world
    (tensor([0.5000, 1.5000]), 0, 1)
    """
    x = x.detach()
    if not is_distributed():
        return x, 0, 1
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    if world == 1:
        return x, rank, world
    if check_sizes:
        check_equal_sizes(x.shape[0], device=x.device, group=group)
    x = x.contiguous()
    out = torch.empty((world * x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
    _all_gather(out, x, group)
    return out, rank, world
