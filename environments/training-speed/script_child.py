"""The child side of the process split: prepares a clean copy of the solution and runs its train.sh.

    python3 -I script_child.py --mode script|sweep --solution-dir DIR [--sweep] [--private DIR] [--keep-folders]

Started by the scorer (sandbox.py) as the solution user in protected mode, or as the scorer's own user.
It talks to the scorer over file descriptors 0 and 1 until the moment it runs train.sh:

1. (--sweep, the dedicated solution user only) ends every other process of this user and removes its
   leftover folders from earlier runs;
2. makes a fresh private folder (or uses the one the scorer made, same user), copies the solution folder
   into it (`solution/`, links kept as links), makes an empty `output/` and a fresh HOME, TMPDIR and
   compiler caches, and tells the scorer where they are;
3. waits for the scorer's "go", which carries the run's seed, then replaces itself with
   `bash train.sh` in the copy (so that the scorer's clock, started as it sent "go", stops when the
   script's process ends). The script's stdout and stderr go to the scorer, which passes them on.

Nothing here is trusted once train.sh runs: the scorer reads only the weights file, after it has ended
everything the script started.
- mode sweep: ends every process of this user but itself and removes its private folders (unless
  --keep-folders: the scorer reads the output after this sweep).
"""
import argparse
import json
import os
import shutil
import signal
import struct
import sys
import tempfile

SCRIPT = "train.sh"
CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_ON = ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST")


def sweep(remove_folders=False):
    if os.geteuid() == 0:
        raise SystemExit("refusing to end every process as root")
    try:
        os.kill(-1, signal.SIGKILL)  # every process of this user but the caller (Linux)
    except ProcessLookupError:
        pass
    if remove_folders:
        import glob

        for folder in glob.glob("/tmp/rebench-solution-*"):
            try:
                if os.lstat(folder).st_uid == os.geteuid():
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass


class Channel:
    def __init__(self):
        # The scorer's two descriptors move out of the way and are closed when train.sh starts.
        self.fd_in = os.dup(0)
        self.fd_out = os.dup(1)
        os.set_inheritable(self.fd_in, False)
        os.set_inheritable(self.fd_out, False)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        data = struct.pack(">I", len(data)) + data
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_out, view):]

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = os.read(self.fd_in, n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def receive(self):
        (length,) = struct.unpack(">I", self._read(4))
        return json.loads(self._read(length).decode())


def folder_size(path):
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def prepare(solution_dir, given):
    """The private folder with a clean copy of the solution, an empty output folder and fresh caches."""
    os.umask(0o022)
    private = given or tempfile.mkdtemp(prefix="rebench-solution-", dir="/tmp")
    os.chmod(private, 0o755)  # the scorer (another user in protected mode) reads output/ from here
    work = os.path.join(private, "solution")
    output = os.path.join(private, "output")
    shutil.copytree(solution_dir, work, symlinks=True)
    os.mkdir(output, 0o755)
    env = {"PATH": CHILD_PATH, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable}
    for key, sub in (("HOME", "home"), ("TMPDIR", "tmp"), ("TRITON_CACHE_DIR", "cache/triton"),
                     ("TORCHINDUCTOR_CACHE_DIR", "cache/inductor"), ("XDG_CACHE_HOME", "cache")):
        path = os.path.join(private, sub)
        os.makedirs(path, exist_ok=True)
        env[key] = path
    for key in PASSED_ON:
        if key in os.environ:
            env[key] = os.environ[key]
    return private, work, output, env


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("script", "sweep"), required=True)
    parser.add_argument("--solution-dir", required=True)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--private")
    parser.add_argument("--keep-folders", action="store_true")
    args = parser.parse_args()
    if args.mode == "sweep":
        sweep(remove_folders=not args.keep_folders)
        return
    channel = Channel()
    if args.sweep:
        sweep(remove_folders=True)
    try:
        private, work, output, env = prepare(args.solution_dir, args.private)
    except OSError as e:
        channel.send({"ready": False, "error": "could not copy the solution folder: %s" % e})
        return
    if not os.path.isfile(os.path.join(work, SCRIPT)):
        channel.send({"ready": False, "error": "the solution folder has no %s" % SCRIPT})
        return
    channel.send({"ready": True, "pid": os.getpid(), "uid": os.geteuid(), "private": private, "work": work,
                  "output": output, "bytes": folder_size(work)})
    try:
        go = channel.receive()
    except EOFError:
        return
    if go.get("op") != "go":
        return
    env.update({"TRAIN_SEED": str(int(go["seed"])), "TRAIN_OUTPUT": output, "TRAIN_DEVICE": str(go["device"]),
                "TRAIN_SIZE": str(go["size"])})
    os.chdir(work)
    os.execve("/bin/bash", ["bash", SCRIPT], env)


if __name__ == "__main__":
    main()
