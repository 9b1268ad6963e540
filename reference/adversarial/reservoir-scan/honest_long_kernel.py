"""Honest, and longer than the GPU's time slice: a kernel that spins for about 20 ms on the caller's stream
before the reference kernels, so that the GPU may switch to the scorer's process in the middle of the
call, before the result is written. The scorer must then time the call to its done event and keep the
score (about ln(20.5 ms)), not call the unfinished result wrong."""
import torch

import ref_kernel

EXPECTED = "honest"


def reservoir_levels(inflow, capacity):
    torch.cuda._sleep(40_000_000)  # cycles: about 20 ms at the H100's 1.98 GHz
    return ref_kernel.reservoir_levels(inflow, capacity)
