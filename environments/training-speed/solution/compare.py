"""Compares two weights files of the same seed the way the scorer compares yours with its reference run.

    python3 compare.py --seed SEED MINE.bin REFERENCE.bin [--eval-seed N] [--device cuda|cpu] [--size full|tiny]

Prints |mine - ref|_1 / |ref - w_0|_1 (the scorer allows at most recipe.WEIGHT_TOLERANCE), the same against
|ref|_1, and the held-out losses of both (the scorer allows them to differ by at most recipe.LOSS_TOLERANCE). w_0 are the seed's initial
weights. The scorer uses seeds of its own; any seed shows the same checks.
"""
import argparse

import torch

import recipe


def read(path, size):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    want = 4 * recipe.weight_count(size)
    if len(data) != want:
        raise SystemExit("%s has %d bytes; the model's weights take %d" % (path, len(data), want))
    return torch.frombuffer(data, dtype=torch.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("mine")
    parser.add_argument("reference")
    parser.add_argument("--eval-seed", type=int, default=424242)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default="full", choices=sorted(recipe.SIZES))
    args = parser.parse_args()
    size = recipe.SIZES[args.size]
    mine, reference = read(args.mine, size), read(args.reference, size)
    initial = recipe.flatten(recipe.initial_model(args.seed, size))
    d = recipe.distance(mine, reference, initial)
    loss = recipe.held_out_loss(mine, args.eval_seed, size, args.device)
    loss_ref = recipe.held_out_loss(reference, args.eval_seed, size, args.device)
    print("weights: %.4f of the update (at most %.2f), %.5f of the weights"
          % (d["of_update"], recipe.WEIGHT_TOLERANCE, d["of_weights"]))
    print("held-out loss: %.4f against %.4f (off by %.4f; at most %.3f)"
          % (loss, loss_ref, abs(loss - loss_ref), recipe.LOSS_TOLERANCE))


if __name__ == "__main__":
    main()
