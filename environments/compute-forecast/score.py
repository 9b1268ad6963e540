"""Scorer for compute-forecast: trains the configuration in answer.json once at the full budget.

Writes {"score": loss + |predicted - loss|, or null, "message": ...} to REBENCH_RESULT_FILE.
"""
import json
import os
import sys
import traceback

import answer
import lm

TRAIN_SEED = 7
EVAL_SEED = 424242  # held-out sequences no experiment draws: experiments use other seeds


def report(score, message):
    with open(os.environ["REBENCH_RESULT_FILE"], "w", encoding="utf-8") as f:
        json.dump({"score": score, "message": message}, f)
    print(message, flush=True)


def main():
    path = os.path.join(os.environ["REBENCH_SOLUTION_DIR"], "answer.json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 16)
    except OSError as e:
        report(None, "Could not read %s: %s. Write your answer there (see the instructions)." % (path, e.strerror))
        return
    try:
        a = answer.parse_answer(text)
    except answer.BadAnswer as e:
        report(None, str(e))
        return
    try:
        import torch
    except ImportError:
        report(None, "PyTorch is not installed for %s; this environment needs it." % sys.executable)
        return
    if not torch.cuda.is_available():
        report(None, "No CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False). "
                     "This environment trains on an NVIDIA H100; check nvidia-smi on the VM.")
        return
    print("Training d_model=%d, n_layers=%d on %d tokens (%.3g FLOPs of the %.3g budget) on %s."
          % (a["d_model"], a["n_layers"], a["tokens"], lm.flops(a["d_model"], a["n_layers"], a["tokens"]),
             lm.BUDGET_FLOPS, torch.cuda.get_device_name(0)), flush=True)
    try:
        result = lm.train(a["d_model"], a["n_layers"], a["tokens"], "cuda", seed=TRAIN_SEED, eval_seed=EVAL_SEED,
                          log=lambda line: print(line, flush=True))
    except torch.cuda.OutOfMemoryError as e:
        report(None, "The GPU ran out of memory training this configuration: %s" % str(e).split("\n")[0])
        return
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        report(None, "Training failed: %s: %s" % (type(e).__name__, e))
        return
    loss, predicted = result["loss"], a["predicted_loss"]
    s = answer.score(loss, predicted)
    report(s, "Trained %s weights on %s tokens (%.3g FLOPs) in %.0f s. Held-out loss %.4f; you predicted %.4f "
              "(off by %.4f). Score %.4f + %.4f = %.4f."
           % (format(result["weights"], ","), format(result["tokens"], ","), result["flops"], result["seconds"],
              loss, predicted, abs(predicted - loss), loss, abs(predicted - loss), s))


if __name__ == "__main__":
    main()
