"""Reference solution for reservoir-scan, in Triton. Never copied into the environment or the VSIX.

Three launches, reduce-then-scan:
  1. each block of BLOCK inflows is composed into one step (a, lo, hi);
  2. one program scans the block steps in order and writes the level entering every block;
  3. each block scans its inflows again, starting from its entering level, and writes the levels.
The input is read twice and the output written once. All arithmetic is int32: `a` is saturated to
+-(2^30 - 1) after every composition, which cannot change a level because levels stay in [0, C].
"""
import torch
import triton
import triton.language as tl

LIMIT = 2**30 - 1


@triton.jit
def _then(a1, lo1, hi1, a2, lo2, hi2):
    # The step "(a1, lo1, hi1), then (a2, lo2, hi2)".
    a = tl.minimum(tl.maximum(a1 + a2, -1073741823), 1073741823)
    lo = tl.minimum(tl.maximum(lo1 + a2, lo2), hi2)
    hi = tl.minimum(tl.maximum(hi1 + a2, lo2), hi2)
    return a, lo, hi


@triton.jit
def _steps(x_ptr, offs, n, capacity):
    # Positions past the end become the identity step (a = 0, lo = -1, hi = 2^30): they only ever come last.
    mask = offs < n
    a = tl.load(x_ptr + offs, mask=mask, other=0)
    lo = tl.where(mask, 0, -1)
    hi = tl.where(mask, capacity, 1073741824)
    return a, lo, hi


@triton.jit
def _block_steps(x_ptr, sa_ptr, slo_ptr, shi_ptr, n, capacity, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    a, lo, hi = _steps(x_ptr, offs, n, capacity)
    a, lo, hi = tl.associative_scan((a, lo, hi), 0, _then)
    last = tl.arange(0, BLOCK) == BLOCK - 1
    tl.store(sa_ptr + pid, tl.sum(tl.where(last, a, 0), 0))
    tl.store(slo_ptr + pid, tl.sum(tl.where(last, lo, 0), 0))
    tl.store(shi_ptr + pid, tl.sum(tl.where(last, hi, 0), 0))


@triton.jit
def _entering_levels(sa_ptr, slo_ptr, shi_ptr, level_ptr, blocks, CHUNK: tl.constexpr):
    # One program: the level entering block b is the composition of blocks 0..b-1 applied to 0.
    carry = tl.zeros((), dtype=tl.int32)
    for start in range(0, blocks, CHUNK):
        offs = start + tl.arange(0, CHUNK)
        mask = offs < blocks
        a = tl.load(sa_ptr + offs, mask=mask, other=0)
        lo = tl.load(slo_ptr + offs, mask=mask, other=-1)
        hi = tl.load(shi_ptr + offs, mask=mask, other=1073741824)
        a, lo, hi = tl.associative_scan((a, lo, hi), 0, _then)
        after = tl.minimum(tl.maximum(carry + a, lo), hi)
        tl.store(level_ptr + offs + 1, after, mask=mask)
        carry = tl.sum(tl.where(tl.arange(0, CHUNK) == CHUNK - 1, after, 0), 0)


@triton.jit
def _levels(x_ptr, level_ptr, out_ptr, n, capacity, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    a, lo, hi = _steps(x_ptr, offs, n, capacity)
    a, lo, hi = tl.associative_scan((a, lo, hi), 0, _then)
    entering = tl.load(level_ptr + pid)
    tl.store(out_ptr + offs, tl.minimum(tl.maximum(entering + a, lo), hi), mask=offs < n)


BLOCK = 4096
WARPS = 4
CHUNK = 1024


def reservoir_levels(inflow: torch.Tensor, capacity: int) -> torch.Tensor:
    n = inflow.numel()
    out = torch.empty_like(inflow)
    if n == 0:
        return out
    blocks = triton.cdiv(n, BLOCK)
    steps = torch.empty((3, blocks), dtype=torch.int32, device=inflow.device)
    level = torch.zeros(blocks + 1, dtype=torch.int32, device=inflow.device)
    _block_steps[(blocks,)](inflow, steps[0], steps[1], steps[2], n, capacity, BLOCK=BLOCK, num_warps=WARPS)
    _entering_levels[(1,)](steps[0], steps[1], steps[2], level, blocks, CHUNK=CHUNK, num_warps=4)
    _levels[(blocks,)](inflow, level, out, n, capacity, BLOCK=BLOCK, num_warps=WARPS)
    return out
