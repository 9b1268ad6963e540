"""Calibrates training-speed on the GPU it runs on: times the starting and the reference solution through the
scorer's own process split, and checks every run's weights against one reference run.

    python3 reference/training-speed/calibrate.py time start|reference --runs N [--dir DIR]
    python3 reference/training-speed/calibrate.py summary [--dir DIR]

`time` runs the solution's train.sh N times exactly as score.py does (a clean copy in a fresh folder, run as
the solution user where the machine has one, timed from "go" to the end of the script's process, everything
it left ended before the weights are read), but with one fixed seed, CALIBRATION_SEED, so that the scorer's
reference run for that seed is trained once (the first time, about as long as the starting script; kept in
DIR/reference-<seed>.bin) instead of once per run. Each run's weights are judged as score.py judges them;
one line of JSON per run is appended to DIR/runs-<solution>.jsonl and printed. `summary` prints the
`scoring.calibration` record for the manifest from those lines (median, min and max of ln seconds, the
coefficient of variation of the seconds) with the machine's GPU, driver and versions.

DIR defaults to reference/training-speed/.calibration (ignored by git), so that the commands can be split
over several calls on one machine (each call of the device tool may run 10 minutes):

    python3 reference/training-speed/calibrate.py time start --runs 2
    python3 reference/training-speed/calibrate.py time start --runs 3
    python3 reference/training-speed/calibrate.py time reference --runs 5 && \\
        python3 reference/training-speed/calibrate.py summary
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = os.path.join(ROOT, "environments", "training-speed")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ENV)

import recipe  # noqa: E402
import sandbox  # noqa: E402
import score  # noqa: E402

CALIBRATION_SEED = 20261206
EVAL_SEED = 424242


def solution_folder(which, scratch):
    folder = os.path.join(scratch, which)
    shutil.copytree(os.path.join(ENV, "solution"), folder)
    if which == "reference":
        for name in ("train.sh", "train.py"):
            shutil.copy(os.path.join(HERE, name), os.path.join(folder, name))
    return folder


def reference_weights(folder, size, device):
    path = os.path.join(folder, "reference-%d.bin" % CALIBRATION_SEED)
    import torch

    if os.path.exists(path):
        with open(path, "rb") as f:
            data = bytearray(f.read())
        return torch.frombuffer(data, dtype=torch.float32)
    started = time.monotonic()
    initial, reference = recipe.train(CALIBRATION_SEED, size, device, log=lambda line: print(line, flush=True))
    print("the scorer's reference run for seed %d took %.1f s" % (CALIBRATION_SEED, time.monotonic() - started))
    recipe.write_weights(reference, path + ".tmp")
    os.replace(path + ".tmp", path)
    return reference


def time_runs(which, runs, folder):
    import torch

    device, size_name = score.choose_device(torch)
    size = recipe.SIZES[size_name]
    os.makedirs(folder, exist_ok=True)
    reference = reference_weights(folder, size, device)
    initial = recipe.flatten(recipe.initial_model(CALIBRATION_SEED, size))
    loss_ref = recipe.held_out_loss(reference, EVAL_SEED, size, device)
    sandbox.protect_parent()
    scratch = tempfile.mkdtemp(prefix="rebench-calibration-")
    try:
        solution = solution_folder(which, scratch)
        for i in range(runs):
            run = sandbox.ScriptRun(solution)
            try:
                run.start()
                run.go(CALIBRATION_SEED, device, size_name)
                seconds, code = run.wait(score.SCRIPT_TIMEOUT_S)
                run.end()
                weights = score.read_weights(run.info["output"], recipe.weight_count(size)) if code == 0 else None
            finally:
                run.close()
            record = {"solution": which, "run": i + 1, "seconds": seconds, "exit": code}
            if weights is not None:
                d = recipe.distance(weights, reference, initial)
                loss = recipe.held_out_loss(weights, EVAL_SEED, size, device)
                valid = d["of_update"] <= recipe.WEIGHT_TOLERANCE and abs(loss - loss_ref) <= recipe.LOSS_TOLERANCE
                record.update({"score": math.log(seconds), "of_update": d["of_update"], "of_weights": d["of_weights"],
                               "loss": loss, "loss_reference": loss_ref, "valid": valid})
            print(json.dumps(record), flush=True)
            with open(os.path.join(folder, "runs-%s.jsonl" % which), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def machine():
    import torch

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip().split("\n")[0]
    except OSError:
        out = "no GPU (nvidia-smi not found), no driver"
    gpu, driver = (out.split(", ") + ["?", "?"])[:2]
    software = {"python": platform.python_version(), "torch": torch.__version__}
    if torch.version.cuda:
        software["cuda"] = torch.version.cuda
    return gpu, driver, software


def summary(folder):
    record = {"date": datetime.date.today().isoformat()}
    record["gpu"], record["driver"], record["software"] = machine()
    for which in ("start", "reference"):
        with open(os.path.join(folder, "runs-%s.jsonl" % which), encoding="utf-8") as f:
            runs = [json.loads(line) for line in f if line.strip()]
        bad = [r for r in runs if not r.get("valid")]
        if bad:
            raise SystemExit("%s: %d of %d runs did not pass the scorer's checks: %s" % (which, len(bad), len(runs), bad))
        scores = [r["score"] for r in runs]
        seconds = [r["seconds"] for r in runs]
        key = "starting" if which == "start" else "reference"
        record[key] = {"runs": len(runs), "median": round(statistics.median(scores), 4), "min": round(min(scores), 4),
                       "max": round(max(scores), 4),
                       "time_cv_percent": round(100 * statistics.stdev(seconds) / statistics.mean(seconds), 3)
                       if len(seconds) > 1 else 0.0}
        print("%s: seconds %s; of_update %s" % (which, [round(s, 2) for s in seconds],
                                                [round(r["of_update"], 4) for r in runs]), file=sys.stderr)
    record["method"] = ("reference/training-speed/calibrate.py: train.sh of the starting solution and of "
                        "reference/training-speed/ run through score.py's process split (clean copy, timed from go "
                        "to the end of the script's process), seed %d for every run, each run's weights judged "
                        "against one reference run of the scorer's recipe for that seed." % CALIBRATION_SEED)
    print(json.dumps(record, indent=2))


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("time", "summary"))
    parser.add_argument("solution", nargs="?", choices=("start", "reference"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=os.path.join(HERE, ".calibration"))
    args = parser.parse_args(argv)
    if args.command == "time":
        if not args.solution:
            parser.error("time needs start or reference")
        time_runs(args.solution, args.runs, args.dir)
    else:
        summary(args.dir)


if __name__ == "__main__":
    main(sys.argv[1:])
