"""The trusted side of the process split for a training script: starts it in a child process and times it.

The scorer (the parent) owns the seed, the clock, the reference run and the comparison. The
participant's train.sh runs only in a child process started from script_child.py, as another user in
protected mode, so that nothing it does (reading the scorer's memory, its seed or its files, writing its
result) reaches the parent. Only the weights file the script writes comes back, and the parent reads it
after it has ended everything the script started.

Who the child runs as is decided as in reservoir-scan's sandbox.py (see environments/README.md, "The
solution user"): the solution user named in /etc/rebench/sandbox.json, through `sudo -n -u` (the one rule
provision-protected.sh writes) or by switching user when the scorer runs as root; otherwise the scorer's
own user, in a session of its own. Either way the parent is non-dumpable and a child subreaper. Each
environment folder is installed on a VM alone, so this file keeps its own copy of those few functions.
"""
import ctypes
import ctypes.util
import json
import os
import pwd
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD_SCRIPT = os.path.join(HERE, "script_child.py")
SANDBOX_CONFIG = "/etc/rebench/sandbox.json"
MAX_MESSAGE = 1 << 16
OUTPUT_CAP = 256 * 1024  # bytes of the script's output passed on to the participant
CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SolutionError(Exception):
    """Something the solution or its process did: the message is for the participant (no score)."""


class SetupError(Exception):
    """The machine is not set up for the split (a configuration problem for the organiser)."""


def protect_parent():
    """Makes this process non-dumpable and a child subreaper (Linux). Returns what could not be done."""
    if not sys.platform.startswith("linux"):
        return ["not Linux: the scorer's memory is not hidden from processes of the same user"]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    problems = []
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        problems.append("prctl(PR_SET_DUMPABLE) failed (errno %d)" % ctypes.get_errno())
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        problems.append("prctl(PR_SET_CHILD_SUBREAPER) failed (errno %d)" % ctypes.get_errno())
    return problems


def parent_of(pid):
    """The parent pid of pid (from /proc), or None when it is gone or unreadable."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def _children_of(pid):
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and parent_of(int(name)) == pid]


def kill_descendants(rounds=50):
    """Kills every process re-parented to this subreaper (and what they start meanwhile); reaps them."""
    me = os.getpid()
    for _ in range(rounds):
        pids = _children_of(me)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def descends_from(pid, ancestor, parents=parent_of):
    """Whether pid is ancestor or one of its descendants (following parent pids up to pid 1)."""
    seen = set()
    while pid and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = parents(pid)
    return False


def foreign_gpu_processes(pids, me, parents=parent_of):
    """Of the pids using a GPU, those this machine runs that are not the scorer or started by it.

    A pid that /proc does not show (another pid namespace, as in a container) cannot be judged and is left
    out."""
    return [pid for pid in pids if parents(pid) is not None and not descends_from(pid, me, parents)]


def gpu_pids():
    """Pids of the processes that hold a CUDA context (nvidia-smi), or None when it cannot say."""
    try:
        r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader,nounits"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    return [int(line) for line in r.stdout.split() if line.strip().isdigit()]


def describe_process(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            command = f.read(300).replace(b"\0", b" ").decode("utf-8", "replace").strip()
        uid = os.stat("/proc/%d" % pid).st_uid
        user = pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return "pid %d" % pid
    return "pid %d (%s: %s)" % (pid, user, command or "?")


# --- who the child runs as (as in reservoir-scan/sandbox.py) -------------------------------------------

def launch_plan(solution_dir):
    """How to start the child: {"kind": "same-user" | "sudo" | "switch", ...}. Raises SetupError."""
    me = os.geteuid()
    my_name = pwd.getpwuid(me).pw_name
    path = os.environ.get("REBENCH_SANDBOX_CONFIG", SANDBOX_CONFIG)
    config = None
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
            for key in ("scoring_user", "solution_user", "python"):
                if not isinstance(config.get(key), str) or not config[key]:
                    raise ValueError("it lacks %r" % key)
        except (OSError, ValueError) as e:
            raise SetupError("%s cannot be used (%s); run provision-protected.sh again." % (path, e))
    if config and (config["scoring_user"] == my_name or me == 0):
        user = config["solution_user"]
        try:
            record = pwd.getpwnam(user)
        except KeyError:
            raise SetupError("%s names the solution user %r, which does not exist; run provision-protected.sh "
                             "again." % (path, user))
        if record.pw_uid in (0, me):
            raise SetupError("the solution user %r must differ from root and from the scorer's user %r."
                             % (user, my_name))
        plan = {"user": user, "uid": record.pw_uid, "gid": record.pw_gid, "python": config["python"]}
        plan["kind"] = "switch" if me == 0 else "sudo"
        plan["sudo"] = config.get("sudo") or "/usr/bin/sudo"
        return plan
    owner = os.stat(solution_dir).st_uid
    if owner != me:
        raise SetupError("this scorer runs as %s, but the solution folder %s belongs to %s, and no solution user is "
                         "set up (%s): the participant's code would run with the scorer's rights. Run "
                         "provision-protected.sh of this version, which creates one."
                         % (my_name, solution_dir, pwd.getpwuid(owner).pw_name, path))
    return {"kind": "same-user", "user": my_name, "uid": me, "python": sys.executable}


def _drop(plan):
    if plan["kind"] != "switch":
        return None

    def drop():
        os.setgroups([])
        os.setgid(plan["gid"])
        os.setuid(plan["uid"])

    return drop


def sweep_user(plan, remove_folders=True):
    """Ends every process of the dedicated solution user (what the script left running, detached or not),
    and removes its private folders unless told to keep them (the output is read after the sweep)."""
    if plan["kind"] == "same-user":
        return
    argv = [plan["python"], "-I", CHILD_SCRIPT, "--mode", "sweep", "--solution-dir", "/"]
    if not remove_folders:
        argv.append("--keep-folders")
    if plan["kind"] == "sudo":
        argv = [plan["sudo"], "-n", "-u", plan["user"], "--"] + argv
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={"PATH": CHILD_PATH}, cwd="/", preexec_fn=_drop(plan), timeout=30, check=False)


# --- messages ----------------------------------------------------------------------------------------

def write_message(fd, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_message(fd, deadline):
    buffer = b""
    want = 4
    while len(buffer) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, want - len(buffer))
        if not chunk:
            raise EOFError()
        buffer += chunk
        if want == 4 and len(buffer) == 4:
            (length,) = struct.unpack(">I", buffer)
            if length > MAX_MESSAGE:
                raise ValueError("a message of %d bytes (at most %d)" % (length, MAX_MESSAGE))
            want = 4 + length
    obj = json.loads(buffer[4:].decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("a message that is not a JSON object")
    return obj


# --- the run -----------------------------------------------------------------------------------------

class ScriptRun:
    """One run of the solution's train.sh in a clean copy, in a child process; timed by the parent."""

    def __init__(self, solution_dir, plan=None):
        self.solution_dir = solution_dir
        self.plan = plan or launch_plan(solution_dir)
        self.proc = None
        self.private = None
        self.info = {}
        self.output_bytes = 0
        self.output_thread = None
        self.started = None

    def _argv(self):
        plan = self.plan
        args = [plan["python"], "-I", CHILD_SCRIPT, "--mode", "script", "--solution-dir", self.solution_dir]
        if plan["kind"] != "same-user":
            args += ["--sweep"]  # the dedicated user's leftovers from earlier runs are ended first
        else:
            self.private = tempfile.mkdtemp(prefix="rebench-solution-", dir="/tmp")
            args += ["--private", self.private]
        if plan["kind"] == "sudo":
            return [plan["sudo"], "-n", "-u", plan["user"], "--"] + args
        return args

    def start(self, timeout=300):
        """Starts the child, which copies the solution; returns its report (private, work, output folders)."""
        env = {"PATH": CHILD_PATH, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST"):
            if key in os.environ:
                env[key] = os.environ[key]
        self.proc = subprocess.Popen(self._argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd="/", close_fds=True,
                                     start_new_session=True, preexec_fn=_drop(self.plan))
        self.output_thread = threading.Thread(target=self._pass_output, daemon=True)
        self.output_thread.start()
        try:
            self.info = read_message(self.proc.stdout.fileno(), time.monotonic() + timeout)
        except TimeoutError:
            raise SolutionError("Copying the solution folder took more than %d s; keep large files out of it." % timeout)
        except (EOFError, ValueError) as e:
            raise SolutionError("The process that prepares the run ended unexpectedly (%s)." % (e or "no answer"))
        if not self.info.get("ready"):
            raise SolutionError("The run could not start: %s." % self.info.get("error"))
        return self.info

    def go(self, seed, device, size):
        """Starts train.sh (the child replaces itself with it) and the clock."""
        self.started = time.monotonic()
        write_message(self.proc.stdin.fileno(), {"op": "go", "seed": seed, "device": device, "size": size})

    def wait(self, timeout):
        """(seconds from "go" to the end of the script's process, its exit status); status None on timeout."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return time.monotonic() - self.started, None
        return time.monotonic() - self.started, code

    def _pass_output(self):
        stream = self.proc.stderr
        while True:
            line = stream.readline(8192)
            if not line:
                return
            if self.output_bytes < OUTPUT_CAP:
                print("  | " + line.decode("utf-8", "replace").rstrip("\n"), flush=True)
            elif self.output_bytes - len(line) < OUTPUT_CAP:
                print("  | [further output of your script is not shown]", flush=True)
            self.output_bytes += len(line)

    def end(self):
        """Ends everything the script started (its session, the solution user's processes, what was
        re-parented to the scorer) before anything it wrote is read."""
        if not self.proc:
            return
        if self.plan["kind"] == "same-user":
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        else:
            if self.plan["kind"] == "switch" and self.proc.poll() is None:
                self.proc.kill()
            sweep_user(self.plan, remove_folders=False)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        kill_descendants()
        if self.output_thread:
            self.output_thread.join(2)

    def close(self):
        """Removes the private folder (the dedicated user's is removed by its next sweep, or now)."""
        self.end()
        if self.plan["kind"] != "same-user":
            sweep_user(self.plan)
        elif self.private:
            shutil.rmtree(self.private, ignore_errors=True)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr) if self.proc else ():
            try:
                stream.close()
            except OSError:
                pass
        self.proc = None
