"""The reference solution of training-speed: the recipe's run, trained faster by real work.

What it changes against the starting train.py, each keeping the same model, data, initial weights,
optimiser and schedule (so the same weights, within the rounding of bfloat16):
- the data of every step is generated on the GPU in a few large chunks before training (one pass of 257
  positions over all rows of many steps) instead of 257 small launches per step;
- attention is PyTorch's fused scaled_dot_product_attention (flash attention), which never writes the
  T x T scores to memory;
- AdamW is the fused CUDA kernel, the gradient clip stays on the GPU, and no step waits for the host
  (no loss.item()): the CPU queues steps ahead of the GPU;
- no deterministic-kernel mode (it forbids some faster kernels).
Uses the recipe.py of the solution folder for everything it does not change.
"""
import math
import os
import sys
import tempfile
import time
import types

import torch
import torch.distributed as dist
import torch.nn.functional as F

import recipe

CHUNK_STEPS = 250  # steps whose batches are generated at once


def fast_block_forward(block, heads, head_dim):
    attention = getattr(F, "scaled_dot_product_attention", None)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        if attention is not None:
            y = attention(q, k, v, is_causal=True)
        else:  # PyTorch before 2.0 (the CPU tests)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            y = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))

    block.forward = types.MethodType(forward, block)


def chunk_batches(seed, first, count, rows, size, table):
    """The batches of steps first .. first+count-1 for the given rows: [count, len(rows), seq_len + 1],
    exactly recipe.batch's tokens, generated in one pass over the positions."""
    device = table.device
    t_len = size["seq_len"] + 1
    keys = torch.tensor([recipe.stream_key(seed, s) for s in range(first, first + count)], dtype=torch.int64,
                        device=device).reshape(-1, 1, 1)
    r = torch.as_tensor(list(rows), dtype=torch.int64, device=device).reshape(1, -1, 1)
    positions = torch.arange(t_len, dtype=torch.int64, device=device).reshape(1, 1, -1)
    draws = recipe._mix32(recipe._mix32((r * t_len + positions) ^ keys) ^ 0x5851F42D) & ((1 << recipe.THRESHOLD_BITS) - 1)
    draws = draws.reshape(-1, t_len)
    tokens = torch.empty_like(draws)
    tokens[:, 0] = draws[:, 0] % recipe.VOCAB
    prev2 = torch.zeros_like(tokens[:, 0])
    prev1 = tokens[:, 0]
    for t in range(1, t_len):
        tokens[:, t] = (table[prev2 * recipe.VOCAB + prev1] <= draws[:, t:t + 1]).sum(1)
        prev2, prev1 = prev1, tokens[:, t]
    return tokens.reshape(count, -1, t_len)


def main():
    seed = int(os.environ["TRAIN_SEED"])
    output = os.environ["TRAIN_OUTPUT"]
    cuda = os.environ.get("TRAIN_DEVICE", "cuda") == "cuda"
    size = recipe.SIZES[os.environ.get("TRAIN_SIZE", "full")]
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = "nccl" if cuda else "gloo"
    if "MASTER_ADDR" in os.environ:
        dist.init_process_group(backend)
    else:
        dist.init_process_group(backend, init_method="file://" + os.path.join(tempfile.mkdtemp(), "store"), rank=0,
                                world_size=1)
    torch.backends.cuda.matmul.allow_tf32 = False  # what stays float32 stays float32, as in the recipe

    model = recipe.initial_model(seed, size).to(device)
    heads = size["heads"]
    for block in model.blocks:
        fast_block_forward(block, heads, size["d_model"] // heads)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if cuda else None,
                                                    gradient_as_bucket_view=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    groups = [{"params": decay, "weight_decay": recipe.WEIGHT_DECAY}, {"params": other, "weight_decay": 0.0}]
    extra = {"fused": True} if cuda else {}
    optimizer = torch.optim.AdamW(groups, lr=size["peak_lr"], betas=recipe.BETAS, eps=1e-8, **extra)
    table = recipe.source_table(device)
    share = size["batch_seqs"] // world
    rows = range(rank * share, (rank + 1) * share)
    steps = size["steps"]

    started = time.monotonic()
    chunk = None
    for step in range(steps):
        if step % CHUNK_STEPS == 0:
            chunk = chunk_batches(seed, step, min(CHUNK_STEPS, steps - step), rows, size, table)
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(step, size)
        tokens = chunk[step % CHUNK_STEPS]
        loss = recipe.loss_of(ddp, tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.GRAD_CLIP)
        optimizer.step()
    if rank == 0:
        recipe.write_weights(recipe.flatten(model), os.path.join(output, "weights.bin"))
        print("trained %d steps in %.1f s" % (steps, time.monotonic() - started), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
