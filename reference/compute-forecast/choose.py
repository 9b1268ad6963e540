"""Picks the reference answer for compute-forecast from a sweep at the final budget.

    python3 reference/compute-forecast/choose.py SWEEP_LOG OUT_DIR

SWEEP_LOG holds the JSON lines of `device_check.py sweep`; the configuration with the lowest held-out
loss becomes OUT_DIR/answer.json, with that loss (from a run with other seeds) as its forecast.
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.startswith("{")]
best = min(rows, key=lambda r: r["loss"])
answer = {"d_model": best["d_model"], "n_layers": best["n_layers"], "tokens": best["tokens"],
          "predicted_loss": round(best["loss"], 4)}
with open(sys.argv[2] + "/answer.json", "w", encoding="utf-8") as f:
    f.write(json.dumps(answer, indent=2) + "\n")
print(json.dumps(answer))
