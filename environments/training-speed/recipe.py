"""The fixed training run of training-speed: the data, the model, its initial weights, the optimiser and
the schedule, the weights file, the held-out loss and how close two sets of weights are.

The scorer trains the reference run with its own copy of this file (and reads your weights file with it);
the copy in your solution folder is what the starting train.py uses. You may change your copy and
train.py in any way that trains the same model: the scorer checks the weights you write against its own
run for the same seed.

Nothing is downloaded. The training data is generated from the run's seed by an integer hash (the same
tokens on any device, in any order of generation) and a fixed table of next-token odds over 128 tokens
that depend on the two tokens before (see `source_table` and `batch`).
"""
import math
import time

VOCAB = 128
TABLE_SEED = 20261206  # the next-token table is the same for every run
THRESHOLD_BITS = 24  # next-token draws compare a 24-bit hash with the table's integer thresholds
EVAL_SEQS = 512  # held-out sequences the loss is measured on
EVAL_STEP_BASE = 1 << 40  # held-out sequences are drawn as if from steps far beyond any training run

# The run's size. "full" is the environment (about 3 minutes on an H100 as given); "tiny" is for tests on a
# CPU only: the scorer uses it when told so by the machine's tests, never on a GPU.
SIZES = {
    "full": {"d_model": 512, "n_layers": 8, "heads": 8, "seq_len": 256, "batch_seqs": 256, "steps": 2400,
             "warmup": 120, "peak_lr": 1e-3},
    "tiny": {"d_model": 32, "n_layers": 2, "heads": 2, "seq_len": 32, "batch_seqs": 8, "steps": 60,
             "warmup": 6, "peak_lr": 3e-3},
}
BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
FINAL_LR_FRACTION = 0.5  # after warm-up the learning rate falls linearly to half the peak at the last step

MASK32 = 0xFFFFFFFF

# What the scorer allows (see `distance` and `held_out_loss`).
WEIGHT_TOLERANCE = 0.03  # |w - w_ref|_1 / |w_ref - w_0|_1
LOSS_TOLERANCE = 0.01  # nats per token, |held-out loss - the reference run's|


def learning_rate(step, size):
    """The learning rate of step `step` (0-based)."""
    peak, warmup, steps = size["peak_lr"], size["warmup"], size["steps"]
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - 1 - warmup)
    return peak * (1 - (1 - FINAL_LR_FRACTION) * progress)


def flops_per_step(size):
    """Training FLOPs of one step: 6 per weight per token, plus attention's scores and mixing."""
    d, n, t, b = size["d_model"], size["n_layers"], size["seq_len"], size["batch_seqs"]
    weights = 12 * n * d * d + 2 * VOCAB * d
    attention = 3 * n * 4 * t * d  # QK^T and AV: 2 * 2 * t * d per token per layer, forward and backward x3
    return (6 * weights + attention) * t * b


# --- the data -----------------------------------------------------------------------------------------

def _mix32(x):
    """A 32-bit integer hash of a tensor of int64 values in [0, 2^32) (low bits of products are exact)."""
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & MASK32
    x = ((x ^ (x >> 15)) * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def _mix_int(x):
    """The same hash on a Python int."""
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & MASK32
    x = ((x ^ (x >> 15)) * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def stream_key(seed, step):
    """A 32-bit key of (seed, step): every step of every seed draws from its own stream."""
    key = _mix_int((seed & MASK32) ^ 0x9E3779B9)
    key = _mix_int(key ^ ((seed >> 32) & MASK32))
    key = _mix_int(key ^ (step & MASK32))
    return _mix_int(key ^ ((step >> 32) & MASK32))


def source_table(device="cpu"):
    """int32 thresholds [VOCAB * VOCAB, VOCAB]: after tokens (a, b) the next token is the number of
    thresholds of row a * VOCAB + b that are at most a 24-bit draw. Computed in float64 on the CPU from a
    fixed seed, so every run and every machine has the same table."""
    import torch

    g = torch.Generator().manual_seed(TABLE_SEED)
    # Each pair of previous tokens favours a few next tokens: sharp, learnable, not deterministic.
    logits = 2.5 * torch.randn(VOCAB * VOCAB, VOCAB, generator=g, dtype=torch.float64)
    last = 1.5 * torch.randn(VOCAB, VOCAB, generator=g, dtype=torch.float64)
    logits += last.repeat(VOCAB, 1)  # row a * VOCAB + b gets the effect of the last token b
    cdf = logits.softmax(1).cumsum(1)
    thresholds = (cdf * (1 << THRESHOLD_BITS)).floor().to(torch.int64).clamp(max=1 << THRESHOLD_BITS)
    thresholds[:, -1] = 1 << THRESHOLD_BITS  # a draw below 2^24 always lands on some token
    return thresholds.to(torch.int32).to(device)


def batch(seed, step, rows, size, table):
    """Tokens [len(rows), seq_len + 1] (int64) of the given rows of step `step`'s batch for `seed`.

    Token t of row r is drawn with the 24-bit hash of (the stream key of (seed, step), r, t): the first
    uniformly, the second after (0, first), every later one after the two before it.
    """
    import torch

    device = table.device
    t_len = size["seq_len"] + 1
    key = stream_key(seed, step)
    r = torch.as_tensor(rows, dtype=torch.int64, device=device).reshape(-1, 1)
    positions = torch.arange(t_len, dtype=torch.int64, device=device).reshape(1, -1)
    draws = _mix32(_mix32((r * t_len + positions) ^ key) ^ 0x5851F42D) & ((1 << THRESHOLD_BITS) - 1)
    tokens = torch.empty((r.shape[0], t_len), dtype=torch.int64, device=device)
    tokens[:, 0] = draws[:, 0] % VOCAB
    prev2 = torch.zeros_like(tokens[:, 0])
    prev1 = tokens[:, 0]
    for t in range(1, t_len):
        row = table[prev2 * VOCAB + prev1]
        tokens[:, t] = (row <= draws[:, t:t + 1]).sum(1)
        prev2, prev1 = prev1, tokens[:, t]
    return tokens


# --- the model ----------------------------------------------------------------------------------------

def build_model(size):
    """The model, with float32 weights on the CPU, not yet initialised (see `initial_model`)."""
    import torch
    from torch import nn

    d, heads, t_max = size["d_model"], size["heads"], size["seq_len"]
    head_dim = d // heads

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d, bias=False)
            self.proj = nn.Linear(d, d, bias=False)
            self.ln2 = nn.LayerNorm(d)
            self.up = nn.Linear(d, 4 * d, bias=False)
            self.down = nn.Linear(4 * d, d, bias=False)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            y = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.down(nn.functional.gelu(self.up(self.ln2(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, d)
            self.position = nn.Parameter(torch.zeros(t_max, d))
            self.blocks = nn.ModuleList(Block() for _ in range(size["n_layers"]))
            self.ln = nn.LayerNorm(d)
            self.head = nn.Linear(d, VOCAB, bias=False)

        def forward(self, tokens):
            x = self.embed(tokens) + self.position[: tokens.shape[1]]
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x))

    return Model()


def initial_model(seed, size):
    """The model with the run's initial weights, on the CPU: the same on every machine for a seed."""
    import torch

    model = build_model(size)
    g = torch.Generator().manual_seed(seed & ((1 << 63) - 1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("proj.weight") or name.endswith("down.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * size["n_layers"]), generator=g)
            elif name == "position":
                p.normal_(0.0, 0.01, generator=g)
            elif p.dim() == 2:
                p.normal_(0.0, 0.02, generator=g)
            # LayerNorm weights stay 1 and biases 0
    return model


def layout(size):
    """[(name, shape)] of the weights file, in this order."""
    return [(name, tuple(p.shape)) for name, p in build_model(size).named_parameters()]


def weight_count(size):
    return sum(math.prod(shape) for _, shape in layout(size))


def autocast(device):
    """The recipe's precision: matrix products in bfloat16 on a GPU (weights, gradients and the optimiser's
    state stay float32); everything in float32 on a CPU."""
    import contextlib

    import torch

    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loss_of(model, tokens):
    """Mean cross-entropy of next-token prediction on a batch, under the recipe's precision."""
    import torch

    with autocast(tokens.device):
        logits = model(tokens[:, :-1])
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))


def make_optimizer(model, size):
    import torch

    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=size["peak_lr"], betas=BETAS, eps=1e-8)


def deterministic(torch):
    """Deterministic kernels (and no TF32 for what stays float32), so that a seed always trains to the same
    weights."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def train(seed, size, device, log=None):
    """The reference run in one process: returns (initial weights, trained weights) as flat float32 CPU tensors."""
    import torch

    deterministic(torch)
    model = initial_model(seed, size)
    initial = flatten(model)
    model = model.to(device)
    optimizer = make_optimizer(model, size)
    table = source_table(device)
    rows = range(size["batch_seqs"])
    started = time.monotonic()
    for step in range(size["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, size)
        loss = loss_of(model, batch(seed, step, rows, size, table))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        if log and ((step + 1) % max(1, size["steps"] // 5) == 0):
            log("reference run: step %d/%d, training loss %.4f, %.0f s"
                % (step + 1, size["steps"], loss.item(), time.monotonic() - started))
    return initial, flatten(model)


# --- weights, loss and comparison ---------------------------------------------------------------------

def flatten(model):
    """The model's weights as one float32 CPU tensor, in the layout of the weights file."""
    import torch

    with torch.no_grad():
        return torch.cat([p.detach().float().reshape(-1).cpu() for _, p in model.named_parameters()])


def write_weights(flat, path):
    """Writes flat float32 weights as the weights file: raw float32, little-endian, in the order of layout()."""
    flat = flat.detach().float().contiguous().cpu()
    try:
        data = flat.numpy().astype("<f4").tobytes()
    except (ImportError, RuntimeError):  # PyTorch without NumPy
        import array

        values = array.array("f", flat.tolist())
        if values.itemsize != 4:
            raise RuntimeError("this machine's C float is not 4 bytes")
        import sys

        if sys.byteorder != "little":
            values.byteswap()
        data = values.tobytes()
    with open(path, "wb") as f:
        f.write(data)


def model_from_flat(flat, size, device):
    import torch

    model = build_model(size)
    offset = 0
    with torch.no_grad():
        for _, p in model.named_parameters():
            n = p.numel()
            p.copy_(flat[offset:offset + n].reshape(p.shape))
            offset += n
    return model.to(device)


def held_out_loss(flat, eval_seed, size, device):
    """Mean cross-entropy (nats per token) of the weights on EVAL_SEQS sequences drawn with eval_seed."""
    import torch

    model = model_from_flat(flat, size, device)
    model.eval()
    table = source_table(device)
    chunk = max(1, min(EVAL_SEQS, size["batch_seqs"]))
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, EVAL_SEQS, chunk):
            tokens = batch(eval_seed, EVAL_STEP_BASE, range(start, start + chunk), size, table)
            total += float(loss_of(model, tokens)) * chunk
            count += chunk
    return total / count


def distance(weights, reference, initial):
    """How far weights are from the reference run's, as two ratios of L1 norms (float64 sums):

    - "of_update": |w - w_ref|_1 / |w_ref - w_0|_1, the difference against how far training moved the
      weights from their initial values w_0 (what the scorer checks);
    - "of_weights": |w - w_ref|_1 / |w_ref|_1, against the weights themselves (shown for comparison).
    """
    diff = float((weights.double() - reference.double()).abs().sum())
    update = float((reference.double() - initial.double()).abs().sum())
    norm = float(reference.double().abs().sum())
    return {"of_update": diff / update if update > 0 else math.inf, "of_weights": diff / norm if norm > 0 else math.inf}
