"""The starting training script without its per-step host sync (loss.item() every step).

Started by train.sh through torchrun. Reads TRAIN_SEED, TRAIN_OUTPUT, TRAIN_DEVICE (cuda or cpu) and
TRAIN_SIZE (full; tiny in the environment's own tests on a CPU). Trains the model of recipe.py for its
steps on the batches of recipe.batch, each rank on its share of the rows of every batch, and writes the
weights to $TRAIN_OUTPUT/weights.bin (float32, little-endian, in the order of recipe.layout).
"""
import os
import sys
import tempfile
import time

import torch
import torch.distributed as dist

import recipe


def main():
    seed = int(os.environ["TRAIN_SEED"])
    output = os.environ["TRAIN_OUTPUT"]
    device_kind = os.environ.get("TRAIN_DEVICE", "cuda")
    size = recipe.SIZES[os.environ.get("TRAIN_SIZE", "full")]
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_kind == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if "MASTER_ADDR" in os.environ:  # started by torchrun
        dist.init_process_group(backend)
    else:  # one process started directly
        store = os.path.join(tempfile.mkdtemp(), "store")
        dist.init_process_group(backend, init_method="file://" + store, rank=0, world_size=1)
    recipe.deterministic(torch)

    model = recipe.initial_model(seed, size).to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device_kind == "cuda" else None)
    optimizer = recipe.make_optimizer(model, size)
    table = recipe.source_table(device)
    if size["batch_seqs"] % world:
        raise SystemExit("the batch of %d sequences does not split over %d processes" % (size["batch_seqs"], world))
    share = size["batch_seqs"] // world
    rows = range(rank * share, (rank + 1) * share)

    started = time.monotonic()
    for step in range(size["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(step, size)
        tokens = recipe.batch(seed, step, rows, size, table)
        loss = recipe.loss_of(ddp, tokens)  # DDP averages the gradients over the ranks: the whole batch's mean
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.GRAD_CLIP)
        optimizer.step()
        if rank == 0 and (step + 1) % 500 == 0:  # the only waits for the GPU
            print("step %d/%d  loss %.4f  %.1f s" % (step + 1, size["steps"], loss.item(), time.monotonic() - started),
                  flush=True)

    if rank == 0:
        recipe.write_weights(recipe.flatten(model), os.path.join(output, "weights.bin"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
