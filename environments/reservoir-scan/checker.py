"""The trusted side of the reservoir-scan scorer: the definition, a trusted GPU implementation, the test
inputs and the comparison. Kept apart from score.py so that it can be checked on any machine (the pure
Python parts need no GPU, the torch parts run on CPU tensors too).

The task: a reservoir holds between 0 and `capacity` units and starts empty. At step i the net inflow
x[i] arrives; what does not fit spills over, and the level never goes below zero:

    level[i] = min(capacity, max(0, level[i-1] + x[i])),   level[-1] = 0.
"""

MAX_MAGNITUDE = 2**30 - 1  # |x[i]| and capacity are at most this, so int32 arithmetic can be made exact
FULL_SIZE = 100_000_000
FULL_CAPACITY = 1_000_000
FULL_SPREAD = 2**16  # the timed input's inflows are uniform in [-FULL_SPREAD, FULL_SPREAD]


def levels_by_definition(inflow, capacity):
    """The definition, one step at a time, in plain Python. Slow; used on short inputs and in tests."""
    level, out = 0, []
    for x in inflow:
        level = min(capacity, max(0, level + x))
        out.append(level)
    return out


def compose(first, second):
    """The step 'apply first, then second' for steps written as (a, lo, hi): y -> min(hi, max(lo, y + a)).

    clamp(clamp(y + a1, lo1, hi1) + a2, lo2, hi2) = clamp(y + a1 + a2, clamp(lo1 + a2), clamp(hi1 + a2)),
    where the inner clamps are to [lo2, hi2]. This is what makes the recurrence a scan.
    """
    a1, lo1, hi1 = first
    a2, lo2, hi2 = second
    return (a1 + a2, min(hi2, max(lo2, lo1 + a2)), min(hi2, max(lo2, hi1 + a2)))


def levels_trusted(inflow, capacity):
    """A trusted torch implementation (Hillis-Steele scan of the steps in int64, no saturation needed).

    Independent of the participant's code; exact on any device. Returns int32 levels.
    """
    import torch

    a = inflow.to(torch.int64)
    lo = torch.zeros_like(a)
    hi = torch.full_like(a, capacity)
    n = a.numel()
    shift = 1
    while shift < n:
        # Steps i >= shift become "step i-shift (and everything it already covers), then step i".
        a2, lo2, hi2 = a[shift:], lo[shift:], hi[shift:]
        new_a = a[:-shift] + a2
        new_lo = torch.minimum(hi2, torch.maximum(lo2, lo[:-shift] + a2))
        new_hi = torch.minimum(hi2, torch.maximum(lo2, hi[:-shift] + a2))
        a = torch.cat((a[:shift], new_a))
        lo = torch.cat((lo[:shift], new_lo))
        hi = torch.cat((hi[:shift], new_hi))
        shift *= 2
    # Every level is the composed step applied to the empty reservoir (0).
    return torch.minimum(hi, torch.maximum(lo, a)).to(torch.int32)


def correctness_cases():
    """(label, length, kind, capacity) of the inputs every scoring run checks, edge cases first."""
    return [
        ("empty input", 0, "uniform", 1000),
        ("one element", 1, "uniform", 1000),
        ("two elements", 2, "uniform", 1000),
        ("all negative", 4099, "negative", 5000),
        ("all positive (fills up and stays full)", 4099, "positive", 5000),
        ("all zeros", 10_007, "zeros", 5000),
        ("capacity 1", 65_537, "small", 1),
        ("largest values and capacity", 1_000_003, "extreme", MAX_MAGNITUDE),
        ("length 131,073 (2^17 + 1)", 131_073, "uniform", 20_000),
        ("length 999,983 (prime)", 999_983, "uniform", 300_000),
        ("length 12,345,679", 12_345_679, "uniform", FULL_CAPACITY),
        ("all positive, full size (the running total passes 2^31)", FULL_SIZE, "positive_large", MAX_MAGNITUDE),
        ("full size, as timed", FULL_SIZE, "uniform_full", FULL_CAPACITY),
    ]


def make_inflow(kind, length, generator, device):
    """Random inflows of the given kind (int32)."""
    import torch

    def uniform(low, high):
        return torch.randint(low, high + 1, (length,), generator=generator, dtype=torch.int64,
                             device=generator.device).to(torch.int32).to(device)

    if kind == "uniform":
        return uniform(-2000, 2000)
    if kind == "uniform_full":
        return uniform(-FULL_SPREAD, FULL_SPREAD)
    if kind == "negative":
        return uniform(-1000, -1)
    if kind == "positive":
        return uniform(1, 1000)
    if kind == "positive_large":
        return uniform(2**29, MAX_MAGNITUDE)
    if kind == "zeros":
        return torch.zeros(length, dtype=torch.int32, device=device)
    if kind == "small":
        return uniform(-2, 2)
    if kind == "extreme":
        return uniform(-MAX_MAGNITUDE, MAX_MAGNITUDE)
    raise ValueError("unknown input kind %r" % kind)


def describe_mismatch(output, expected, inflow, capacity):
    """None when output equals expected; otherwise a sentence naming what is wrong and where."""
    import torch

    if not isinstance(output, torch.Tensor):
        return "reservoir_levels returned %s, not a torch.Tensor." % type(output).__name__
    if output.dtype != torch.int32:
        return "the result has dtype %s; it must be torch.int32." % output.dtype
    if tuple(output.shape) != tuple(expected.shape):
        return "the result has shape %s; it must be %s, like the input." % (tuple(output.shape), tuple(expected.shape))
    if output.device != expected.device:
        return "the result is on %s; it must be on %s, like the input." % (output.device, expected.device)
    wrong = (output != expected).nonzero()
    if wrong.numel() == 0:
        return None
    count = wrong.numel()
    i = int(wrong[0, 0])
    start = max(0, i - 2)
    return ("%d of %d levels are wrong; the first is at index %d: expected %d, got %d "
            "(capacity %d, inflows x[%d:%d] = %s)."
            % (count, expected.numel(), i, int(expected[i]), int(output[i]), capacity,
               start, i + 1, [int(v) for v in inflow[start:i + 1].tolist()]))


def recurrence_errors(output, inflow, capacity):
    """How many levels break the definition, each checked against the level before it (torch, any device).

    level[i] == min(capacity, max(0, level[i-1] + x[i])) for every i, with level[-1] = 0, holds for exactly
    one sequence: the right one. So this is an exact check that needs no expected result and no scan.
    """
    import torch

    levels = output.to(torch.int64)
    before = torch.cat((levels.new_zeros(1), levels[:-1]))
    want = (before + inflow.to(torch.int64)).clamp(0, capacity)
    return int((levels != want).sum())


_gpu_check = None


def launch_recurrence_check(inflow, output, capacity, errors, rotation=0):
    """The same check as recurrence_errors as one Triton kernel (GPU): adds the count of wrong levels to
    `errors` (an int32 tensor of one element) without waiting for it. It reads the input and the result
    once. Blocks start at a random `rotation`, so the order in which the result is read is not known in
    advance. Every read level is compared with the level before it as read by the same block; a result
    that passes is exactly right, because the first level is checked against 0.
    """
    global _gpu_check
    if _gpu_check is None:
        _gpu_check = _build_gpu_check()
    n = inflow.numel()
    if n == 0:
        return
    block = 4096
    blocks = (n + block - 1) // block
    _gpu_check[(blocks,)](inflow, output, errors, n, capacity, rotation % blocks, blocks, BLOCK=block, num_warps=8)


def _build_gpu_check():
    import triton
    import triton.language as tl

    @triton.jit
    def check(x_ptr, out_ptr, errors_ptr, n, capacity, rotation, blocks, BLOCK: tl.constexpr):
        b = (tl.program_id(0) + rotation) % blocks
        offs = b.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        x = tl.load(x_ptr + offs, mask=inside, other=0)
        level = tl.load(out_ptr + offs, mask=inside, other=0)
        before = tl.load(out_ptr + offs - 1, mask=inside & (offs > 0), other=0)
        # int64: a wrong level can be any int32, and the sum must not wrap around.
        want = tl.minimum(tl.maximum(before.to(tl.int64) + x.to(tl.int64), 0), capacity)
        wrong = tl.sum(((level.to(tl.int64) != want) & inside).to(tl.int32), 0)
        tl.atomic_add(errors_ptr, wrong)

    return check
