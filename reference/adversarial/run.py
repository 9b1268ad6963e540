"""Runs an environment's scorer on every solution of the adversarial suite and writes a table.

    python3 reference/adversarial/run.py reservoir-scan [--out FILE.md] [--only NAME,NAME] [--tolerance 0.01]
    python3 reference/adversarial/run.py compute-forecast [--out FILE.md] [--only NAME,NAME]
    python3 reference/adversarial/run.py training-speed [--out FILE.md] [--only NAME,NAME] [--tolerance 0.05] [--cpu]

reservoir-scan: each file in reference/adversarial/reservoir-scan/ becomes solution.py of a scratch solution
folder, next to ref_kernel.py (a copy of the reference solution), and score.py runs on it as the runner would
run it (REBENCH_SOLUTION_DIR, REBENCH_RESULT_FILE in a scratch jobs/<name>/result/ folder). The starting
solution of the environment runs too. Each file's docstring says what it tries, its EXPECTED what it must get:
- "no score": the run must end with no score;
- "honest": the run may end with no score, or with a score no better than the honest reference kernel's
  (honest_reference.py, run first) by more than --tolerance (in ln ms); honest_* files must have a score.
After each run the suite checks that nothing the solution started is still running (pid files in /tmp).

compute-forecast: each folder in reference/adversarial/compute-forecast/ is a solution folder (answer.json, or a
setup.sh that makes what git cannot hold: links, pipes, large files); its README.txt says what it must get on its
first line and what it tries after. The scorer runs with a scorer secret of the suite's own
(REBENCH_SCORER_SECRET), as on a protected VM.

training-speed: each folder in reference/adversarial/training-speed/ holds the files that replace or join those
of the starting solution (the files of _shared/ join every one; honest_reference gets reference/training-speed/);
its setup.sh, if any, runs in the prepared folder first (with ADVERSARIAL_DEVICE and ADVERSARIAL_SIZE), as the
participant's earlier work would have. README.txt says what it must get on its first line ("no score" or "honest":
no score, or a time no better than honest_reference's by more than --tolerance in ln s) and what it tries after; a
second line starting "GPU only" keeps it out of --cpu runs. --cpu scores on the CPU at the recipe's tiny size
(REBENCH_TRAINING_CPU_TEST), as the environment's tests do on a machine without a GPU; its times are not compared
(an "honest" entry may then have any score or none).

Prints one line per run and, last, the Markdown table; --out writes the table to a file too.
"""
import argparse
import ast
import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))


def docstring_and_expected(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    doc = ast.get_docstring(tree) or ""
    expected = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXPECTED" for t in node.targets):
            expected = ast.literal_eval(node.value)
    return " ".join(doc.split()), expected


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers():
    """Processes recorded by the suite's solutions that are still running (and ends them)."""
    found = []
    for path in glob.glob("/tmp/rebench-adversarial-*.pid"):
        try:
            pid = int(open(path).read().strip())
        except (OSError, ValueError):
            continue
        os.unlink(path)
        if alive(pid):
            found.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return found


def score_once(env_dir, solution_dir, scratch, name, timeout):
    result_dir = os.path.join(scratch, name, "result")
    os.makedirs(result_dir)
    result_file = os.path.join(result_dir, "result.json")
    env = dict(os.environ, REBENCH_SOLUTION_DIR=solution_dir, REBENCH_RESULT_FILE=result_file,
               REBENCH_JOB_ID="adversarial-" + name, PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "score.py"], cwd=env_dir, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              start_new_session=True)
        output, code = proc.stdout.decode("utf-8", "replace"), proc.returncode
    except subprocess.TimeoutExpired as e:
        output, code = (e.output or b"").decode("utf-8", "replace") + "\n[timed out]", None
    wall = time.perf_counter() - started
    time.sleep(0.5)  # what a leftover writes meanwhile is what the runner would read
    try:
        with open(result_file, encoding="utf-8") as f:
            outcome = json.load(f)
    except (OSError, ValueError) as e:
        outcome = {"score": None, "message": "no result file (%s)" % e}
    score = outcome.get("score")
    if code != 0:
        score = None
        outcome["message"] = "%s (exit %s)" % (outcome.get("message"), code)
    if isinstance(score, (int, float)) and not math.isfinite(score):
        score = None
    return score, str(outcome.get("message")), wall, output


def reservoir_solutions():
    suite = os.path.join(HERE, "reservoir-scan")
    files = sorted(glob.glob(os.path.join(suite, "*.py")))
    files.sort(key=lambda p: (os.path.basename(p) != "honest_reference.py", os.path.basename(p)))
    entries = []
    for path in files:
        doc, expected = docstring_and_expected(path)
        entries.append({"name": os.path.basename(path)[:-3], "what": doc, "expected": expected, "file": path})
    entries.append({"name": "starting solution", "what": "Honest: the environment's starting solution.",
                    "expected": "honest-start",
                    "file": os.path.join(ROOT, "environments", "reservoir-scan", "solution", "solution.py")})
    return entries


def prepare_reservoir(entry, scratch):
    folder = os.path.join(scratch, entry["name"].replace(" ", "_"), "solution")
    os.makedirs(folder)
    shutil.copy(entry["file"], os.path.join(folder, "solution.py"))
    shutil.copy(os.path.join(ROOT, "reference", "reservoir-scan", "solution.py"), os.path.join(folder, "ref_kernel.py"))
    return folder


def forecast_solutions():
    suite = os.path.join(HERE, "compute-forecast")
    entries = []
    for folder in sorted(glob.glob(os.path.join(suite, "*"))):
        if not os.path.isdir(folder):
            continue
        with open(os.path.join(folder, "README.txt"), encoding="utf-8") as f:
            lines = f.read().strip().split("\n")
        expected = lines[0].split(":", 1)[1].strip()
        entries.append({"name": os.path.basename(folder), "what": " ".join(" ".join(lines[1:]).split()),
                        "expected": expected, "file": folder})
    entries.sort(key=lambda e: (e["name"] != "honest_reference", e["name"]))
    return entries


def prepare_forecast(entry, scratch):
    folder = os.path.join(scratch, entry["name"], "solution")
    shutil.copytree(entry["file"], folder, symlinks=True)
    setup = os.path.join(folder, "setup.sh")
    if os.path.exists(setup):  # makes what a folder cannot hold in git (links, pipes, large files)
        subprocess.run(["bash", setup], cwd=folder, check=True)
    return folder


def training_solutions(cpu):
    suite = os.path.join(HERE, "training-speed")
    entries = []
    for folder in sorted(glob.glob(os.path.join(suite, "*"))):
        name = os.path.basename(folder)
        if not os.path.isdir(folder) or name.startswith("_"):
            continue
        with open(os.path.join(folder, "README.txt"), encoding="utf-8") as f:
            lines = f.read().strip().split("\n")
        if cpu and len(lines) > 1 and lines[1].startswith("GPU only"):
            continue
        expected = lines[0].split(":", 1)[1].strip()
        entries.append({"name": name, "what": " ".join(" ".join(lines[1:]).split()), "expected": expected,
                        "file": folder})
    entries.sort(key=lambda e: (e["name"] != "honest_reference", e["name"]))
    entries.append({"name": "starting solution", "what": "Honest: the environment's starting solution.",
                    "expected": "honest-start", "file": None})
    return entries


def prepare_training(entry, scratch):
    folder = os.path.join(scratch, entry["name"].replace(" ", "_"), "solution")
    shutil.copytree(os.path.join(ROOT, "environments", "training-speed", "solution"), folder)
    if entry["file"] is None:
        return folder
    files = [os.path.join(HERE, "training-speed", "_shared", name)
             for name in os.listdir(os.path.join(HERE, "training-speed", "_shared"))]
    if entry["name"] == "honest_reference":
        files += [os.path.join(ROOT, "reference", "training-speed", name) for name in ("train.sh", "train.py")]
    files += [os.path.join(entry["file"], name) for name in os.listdir(entry["file"]) if name != "README.txt"]
    for path in files:
        shutil.copy(path, os.path.join(folder, os.path.basename(path)))
    setup = os.path.join(folder, "setup.sh")
    if os.path.exists(setup):  # what the participant's earlier work left: stashed weights, a server
        cpu = os.environ.get("REBENCH_TRAINING_CPU_TEST") == "1"
        env = dict(os.environ, ADVERSARIAL_DEVICE="cpu" if cpu else "cuda", ADVERSARIAL_SIZE="tiny" if cpu else "full",
                   PYTHON=sys.executable)
        subprocess.run(["bash", setup], cwd=folder, env=env, check=True)
    return folder


def clean_training_leftovers():
    """Ends warm_server's server (started by its setup.sh, as a participant's own process would be) and removes
    what the suite's solutions leave in /tmp on purpose."""
    try:
        with open("/tmp/rebench-warm-server.pid") as f:
            os.kill(int(f.read().split()[0]), signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
    for path in ("/tmp/rebench-warm-server.pid", "/tmp/rebench-adversarial-checkpoint.bin",
                 "/tmp/rebench-adversarial-warm.sock", "/tmp/rebench-adversarial-warm.log"):
        try:
            os.unlink(path)
        except OSError:
            pass


def verdict(entry, score, honest, tolerance):
    expected = entry["expected"]
    if expected == "no score":
        return score is None
    if expected in ("honest-start",) or entry["name"].startswith("honest"):
        return score is not None
    if expected == "honest":
        return score is None or honest is None or score >= honest - tolerance
    raise SystemExit("%s: EXPECTED must be 'no score' or 'honest', not %r" % (entry["name"], expected))


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("environment", choices=("reservoir-scan", "compute-forecast", "training-speed"))
    parser.add_argument("--out")
    parser.add_argument("--only")
    parser.add_argument("--tolerance", type=float)
    parser.add_argument("--timeout", type=int)
    parser.add_argument("--cpu", action="store_true", help="training-speed: the tiny size on the CPU")
    args = parser.parse_args(argv)
    env_dir = os.path.join(ROOT, "environments", args.environment)
    training = args.environment == "training-speed"
    if args.tolerance is None:
        args.tolerance = 0.05 if training else 0.01  # a training run's time varies more than a kernel's
    if args.timeout is None:
        args.timeout = 1600 if training else 400
    if args.cpu:
        os.environ["REBENCH_TRAINING_CPU_TEST"] = "1"
        # Times on a shared CPU say nothing of a GPU's: there "honest" means only that the weights passed.
        args.tolerance = math.inf
    if args.environment == "reservoir-scan":
        entries, prepare = reservoir_solutions(), prepare_reservoir
    elif training:
        entries, prepare = training_solutions(args.cpu), prepare_training
    else:
        entries, prepare = forecast_solutions(), prepare_forecast
    if args.only:
        wanted = set(args.only.split(","))
        entries = [e for e in entries if e["name"] in wanted or e["name"] == "honest_reference"]
    leftovers()
    scratch = tempfile.mkdtemp(prefix="rebench-adversarial-")
    if args.environment == "compute-forecast":
        secret = os.path.join(scratch, "scorer-secret")
        with open(secret, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.environ["REBENCH_SCORER_SECRET"] = secret
    honest = None
    rows = []
    try:
        for entry in entries:
            folder = prepare(entry, scratch)
            score, message, wall, output = score_once(env_dir, folder, scratch, entry["name"].replace(" ", "_"),
                                                      args.timeout)
            left = leftovers()
            if training:
                clean_training_leftovers()
            if left:
                message += " | LEFT RUNNING: pids %s" % left
            if entry["name"] == "honest_reference":
                honest = score
            ok = verdict(entry, score, honest, args.tolerance) and not left
            rows.append((entry, score, message, ok))
            print("%-22s %-9s %8s  %5.0f s  %s  %s" % (entry["name"], entry["expected"],
                                                     "no score" if score is None else "%.4f" % score, wall,
                                                     "ok" if ok else "FAILED", message[:300]), flush=True)
            if not ok or os.environ.get("REBENCH_ADVERSARIAL_VERBOSE"):
                print(output[-4000:], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = ["| Solution | What it tries | Score | Expected | Verdict |", "| --- | --- | --- | --- | --- |"]
    for entry, score, message, ok in rows:
        shown = "no score" if score is None else "%.4f" % score
        expected = {"honest-start": "its honest time", "honest": "no score, or its honest time",
                    "no score": "no score"}[entry["expected"]]
        if entry["name"].startswith("honest"):
            expected = "its honest score"
        what = entry["what"].replace("|", "\\|")
        table.append("| `%s` | %s | %s: %s | %s | %s |" % (entry["name"], what, shown,
                                                         message.replace("|", "\\|")[:400], expected,
                                                         "as expected" if ok else "**NOT AS EXPECTED**"))
    text = "\n".join(table) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0 if all(ok for _, _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
