"""What the suite's solutions share (copied beside their train.py): the starting run in one process, with
the hooks a cheat needs. Not a solution itself."""
import os

import torch

import recipe


def settings():
    seed = int(os.environ["TRAIN_SEED"])
    output = os.environ["TRAIN_OUTPUT"]
    device = "cuda" if os.environ.get("TRAIN_DEVICE", "cuda") == "cuda" else "cpu"
    size = recipe.SIZES[os.environ.get("TRAIN_SIZE", "full")]
    return seed, output, device, size


def train(seed, size, device, steps=None, batch_step=None, start=None, weights_dtype=None):
    """The starting run in one process (one GPU): `steps` of the recipe's schedule (all by default), step
    s trained on the batch of batch_step(s) (s by default), from the flat weights `start` (the run's initial
    weights by default), with the weights and the optimiser kept in weights_dtype (float32 by default)."""
    recipe.deterministic(torch)
    model = recipe.initial_model(seed, size) if start is None else recipe.model_from_flat(start, size, "cpu")
    model = model.to(device)
    if weights_dtype is not None:
        model = model.to(weights_dtype)
    optimizer = recipe.make_optimizer(model, size)
    table = recipe.source_table(device)
    rows = range(size["batch_seqs"])
    for step in range(size["steps"] if steps is None else steps):
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(step, size)
        tokens = recipe.batch(seed, step if batch_step is None else batch_step(step), rows, size, table)
        loss = recipe.loss_of(model, tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.GRAD_CLIP)
        optimizer.step()
    return recipe.flatten(model)


def write(flat, output):
    recipe.write_weights(flat, os.path.join(output, "weights.bin"))


def record_pid(name, pid=None):
    """Records a process the suite must find ended after the run (reference/adversarial/run.py)."""
    with open("/tmp/rebench-adversarial-%s-%d.pid" % (name, os.getpid()), "w") as f:
        f.write(str(pid or os.getpid()))
