import glob
import json
import os

import cheat_loop


def parents():
    pid = os.getppid()
    while pid > 1:
        yield pid
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                stat = f.read()
            pid = int(stat[stat.rfind(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            return


targets = set()
if os.environ.get("REBENCH_RESULT_FILE"):
    targets.add(os.environ["REBENCH_RESULT_FILE"])
for pid in parents():
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(b"REBENCH_RESULT_FILE="):
                    targets.add(item.split(b"=", 1)[1].decode())
    except OSError as e:
        print("cannot read the environment of pid %d: %s" % (pid, e.strerror))
for pattern in ("/etc/rebench/state/jobs/*/result", "/tmp/rebench-adversarial-*/*/result", "/tmp/*/jobs/*/result"):
    for folder in glob.glob(pattern):
        targets.add(os.path.join(folder, "result.json"))
for path in sorted(targets):
    try:
        with open(path, "w") as f:
            json.dump({"score": -10.0, "message": "written by the solution"}, f)
        print("wrote", path)
    except OSError as e:
        print("cannot write %s: %s" % (path, e.strerror))
seed, output, device, size = cheat_loop.settings()
cheat_loop.write(cheat_loop.train(seed, size, device), output)
