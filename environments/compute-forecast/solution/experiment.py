"""Runs one training experiment with the fixed recipe and records it in experiments.jsonl.

    python experiment.py --d-model 256 --n-layers 4 --tokens 20000000
    python experiment.py --d-model 256 --n-layers 4 --fit   (how many tokens the final budget allows)

One experiment may spend at most lm.EXPERIMENT_CAP_FLOPS (6 x weights x tokens).
"""
import argparse
import json
import os
import sys
import time

import lm

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    parser = argparse.ArgumentParser(description="One training run of the compute-forecast recipe.")
    parser.add_argument("--d-model", type=int, required=True, help="width, a multiple of %d" % lm.HEAD_DIM)
    parser.add_argument("--n-layers", type=int, required=True)
    parser.add_argument("--tokens", type=float, help="training tokens (whole steps of %d are run)" % lm.BATCH_TOKENS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit", action="store_true", help="print the most tokens the final budget allows, and stop")
    args = parser.parse_args(argv)
    n = lm.weights(args.d_model, args.n_layers)
    if args.fit:
        print("d_model %d, n_layers %d: %s weights; the final budget of %.3g FLOPs allows %s tokens"
              % (args.d_model, args.n_layers, format(n, ","), lm.BUDGET_FLOPS,
                 format(lm.max_tokens(args.d_model, args.n_layers), ",")))
        return 0
    if args.tokens is None:
        parser.error("give --tokens (or --fit)")
    tokens = int(args.tokens)
    spent = lm.flops(args.d_model, args.n_layers, lm.steps_for(tokens) * lm.BATCH_TOKENS)
    if spent > lm.EXPERIMENT_CAP_FLOPS:
        parser.error("that is %.3g FLOPs; one experiment may spend at most %.3g (at this size: %s tokens)"
                     % (spent, lm.EXPERIMENT_CAP_FLOPS,
                        format(lm.max_tokens(args.d_model, args.n_layers, lm.EXPERIMENT_CAP_FLOPS), ",")))
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = lm.train(args.d_model, args.n_layers, tokens, device, seed=args.seed, eval_seed=1000 + args.seed)
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "d_model": args.d_model, "n_layers": args.n_layers,
              "seed": args.seed, **result}
    with open(os.path.join(HERE, "experiments.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
