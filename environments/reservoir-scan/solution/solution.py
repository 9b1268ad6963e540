"""Starting solution: correct, simple and slow.

Each step i is the function y -> min(capacity, max(0, y + x[i])). Functions of the form
y -> min(hi, max(lo, y + a)) stay of that form when composed, so the levels are a prefix scan over
(a, lo, hi) triples. This version does the scan by doubling: after k rounds, entry i holds the
composition of steps i-2^k+1 .. i. About 27 rounds at 10^8 elements, each several full passes over
int64 tensors.
"""
import torch


def reservoir_levels(inflow: torch.Tensor, capacity: int) -> torch.Tensor:
    a = inflow.long()
    lo = torch.zeros_like(a)
    hi = torch.full_like(a, capacity)
    distance = 1
    while distance < a.numel():
        earlier_a, earlier_lo, earlier_hi = a[:-distance], lo[:-distance], hi[:-distance]
        later_a, later_lo, later_hi = a[distance:], lo[distance:], hi[distance:]
        # "earlier, then later": clamp(clamp(y + a1, lo1, hi1) + a2, lo2, hi2)
        combined_lo = (earlier_lo + later_a).clamp(min=later_lo, max=later_hi)
        combined_hi = (earlier_hi + later_a).clamp(min=later_lo, max=later_hi)
        combined_a = earlier_a + later_a
        a, lo, hi = a.clone(), lo.clone(), hi.clone()
        a[distance:], lo[distance:], hi[distance:] = combined_a, combined_lo, combined_hi
        distance *= 2
    return a.clamp(min=lo, max=hi).int()
