"""Sets a machine up for a METR Task Standard family the way METR's image is built, without Docker, and calls
the installed family's methods. Run it as root (Python 3.8+, standard library only):

  machine.py [--state-dir DIR] prepare --family-src DIR --task NAME [--family NAME] [--family-python PY] [--secrets FILE]
                     [--family-root DIR] [--force] [--rerun-start]
  machine.py call --method METHOD [--input FILE] [--result-file FILE] [--timeout S] [--entry | --runner-result]
  machine.py starting-score [--timeout S]
  machine.py install-scoring --scoring-user USER --timeout S
  machine.py state

prepare, in this order, each step done only when not in place (it reports every step, one JSON line each):
  1. checks, changing nothing: root; a Python 3.11+ for the family (--family-python, else the newest
     python3.x on PATH); the secrets file; then, in a root-only staging copy of the family, imports it and
     reads the task: an unknown task, a task that asks for an auxiliary VM, a family with neither `score`
     nor `intermediate_score`, or a required environment variable the secrets do not set is refused here;
  2. the system group `protected` and the participant's login `agent` (home /home/agent; uid 1000 when
     free), as METR's image has them;
  3. /protected, root:protected u=rwX,g=rX,o= (0750);
  4. the secrets, stored root-only in /etc/rebench/metr/secrets.env (0600): only family calls get them;
  5. the family copied to --family-root (default /root, METR's working folder for family calls; some
     families use absolute /root/... paths), root-only;
  (before step 2) `pip install -r requirements.txt` with the family's Python when the family has one and
     it is not satisfied yet; when the package index cannot be reached, a clear error naming what is
     missing, with nothing else changed;
  7. TaskFamily.install(), once per family version;
  8. TaskFamily.start(t), exactly once: a second prepare never runs it again (it would, for a family using
     METR's protected scoring, truncate the score log), and says so;
  9. /home/agent given to `agent` recursively, skipping files of group `protected`, as METR's driver does.
What prepare did is recorded in /etc/rebench/metr/state.json (root-only; --state-dir names another folder).

install-scoring lets the runner's scoring user run the family's intermediate score as root through one sudo
rule, and prints the scoring command for the environment's manifest.

starting-score runs one intermediate score right after start(t) and records it (a second call returns the
record; the starting solution is what start(t) left in /home/agent).

call runs one method of the installed family through bridge.py (as root, the family folder as working
folder, the secrets in its environment, nothing of the caller's) and prints bridge.py's result, or with
--entry, for intermediate_score and score, the result of a scoring run ({"score", "message", "details",
"manual"}: see entries.py). The family's own output goes to stderr. With --runner-result it is the runner's
scoring command: the result ({"score", "message"}) goes to $REBENCH_RESULT_FILE and the family's details and
the whole report, for the organiser only, to <state-dir>/details/<$REBENCH_JOB_ID>.json (root-only).
"""

import argparse
import datetime
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bridge  # noqa: E402
import entries  # noqa: E402

STATE_DIR = "/etc/rebench/metr"
STATE_FILE = STATE_DIR + "/state.json"
SECRETS_FILE = STATE_DIR + "/secrets.env"
PROTECTED_DIR = "/protected"
PROTECTED_GROUP = "protected"
AGENT = "agent"
AGENT_HOME = "/home/agent"
SECURE_PATH = bridge.SECURE_PATH
SKIPPED = (".git", "__pycache__")
FAMILY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
DESCRIBE_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 4 * 3600
START_TIMEOUT_S = 3600
DEFAULT_INDEX = "https://pypi.org/simple"

os.environ["PATH"] = SECURE_PATH


class Refused(Exception):
    pass


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def step(item, status, message):
    emit({"type": "step", "item": item, "status": status, "message": message})


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_private(path, data, mode=0o600):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def set_state_dir(path):
    global STATE_DIR, STATE_FILE, SECRETS_FILE
    STATE_DIR = os.path.abspath(path)
    STATE_FILE = STATE_DIR + "/state.json"
    SECRETS_FILE = STATE_DIR + "/secrets.env"


def read_state():
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise Refused("%s is damaged (%s): look at it, fix or remove it, then run prepare again" % (STATE_FILE, e))


def save_state(state):
    ensure_state_dir()
    write_private(STATE_FILE, (json.dumps(state, sort_keys=True, indent=2) + "\n").encode())


def ensure_state_dir():
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    os.chown(STATE_DIR, 0, 0)
    os.chmod(STATE_DIR, 0o700)


# --- the family's Python ----------------------------------------------------------------------------------

def python_version(python):
    try:
        out = subprocess.run([python, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if out.returncode != 0:
        return None, out.stderr.strip()[-500:]
    return tuple(int(p) for p in out.stdout.strip().split(".")), None


def find_family_python(named):
    if named:
        path = named if os.path.isabs(named) else shutil.which(named)
        if not path:
            raise Refused("--family-python %s is not a program on this machine's PATH (%s)" % (named, SECURE_PATH))
        version, why = python_version(path)
        if version is None:
            raise Refused("--family-python %s does not run: %s" % (path, why))
        if version < (3, 11):
            raise Refused("--family-python %s is Python %s; METR task families need Python 3.11 or later"
                          % (path, ".".join(map(str, version))))
        return path, version
    seen = []
    for name in ("python3.14", "python3.13", "python3.12", "python3.11", "python3"):
        path = shutil.which(name)
        if not path or os.path.realpath(path) in seen:
            continue
        seen.append(os.path.realpath(path))
        version, _ = python_version(path)
        if version is not None and version >= (3, 11):
            return path, version
    raise Refused("no Python 3.11 or later on this machine (looked for python3.11 to python3.14 and python3 on %s); "
                  "METR task families need one: install one (Debian 12's python3 is 3.11) or name it with "
                  "--family-python" % SECURE_PATH)


# --- family folders ---------------------------------------------------------------------------------------

def tree_entries(root):
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED)
        for name in dirnames + [f for f in filenames if f not in SKIPPED]:
            items.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(items)


def tree_hash(root):
    h = hashlib.sha256()
    for rel in tree_entries(root):
        full = os.path.join(root, rel)
        st = os.lstat(full)
        name = rel.encode("utf-8", "surrogateescape")
        if stat.S_ISDIR(st.st_mode):
            h.update(b"dir\0" + name + b"\0")
        elif stat.S_ISLNK(st.st_mode):
            raise Refused("the family folder holds a symbolic link, %s: copy what it points to instead" % rel)
        else:
            h.update(b"file\0" + name + b"\0" + (b"x" if st.st_mode & 0o111 else b"-") + b"\0")
            with open(full, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def copy_family(src, dest, previous_files):
    """Copies the family's files into dest, root-only; removes files a previous copy put there that the family
    no longer has; leaves everything else in dest alone."""
    os.makedirs(dest, mode=0o700, exist_ok=True)
    files = tree_entries(src)
    for rel in files:
        s, d = os.path.join(src, rel), os.path.join(dest, rel)
        if os.path.isdir(s):
            if os.path.lexists(d) and not os.path.isdir(d):
                os.remove(d)
            os.makedirs(d, mode=0o700, exist_ok=True)
            os.chown(d, 0, 0)
            os.chmod(d, 0o700)
        else:
            if os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d)
            tmp = d + ".rebench-tmp"
            shutil.copyfile(s, tmp)
            os.chown(tmp, 0, 0)
            os.chmod(tmp, 0o700 if os.stat(s).st_mode & 0o100 else 0o600)
            os.replace(tmp, d)
    for rel in sorted(set(previous_files or []) - set(files), reverse=True):
        path = os.path.join(dest, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                os.rmdir(path)
            except OSError:
                pass
        elif os.path.lexists(path):
            os.remove(path)
    return files


# --- calling the family -----------------------------------------------------------------------------------

class Call:
    def __init__(self, report, output):
        self.report = report
        self.output = output


def run_bridge(python, family_dir, family, method, task=None, secrets_file=None, input_file=None, timeout=None,
               stream=None, protected_log=False):
    """bridge.py's result for one call; the family's output is returned (and written to `stream` as it comes)."""
    argv = [python, "-I", os.path.join(HERE, "bridge.py"), "--family-dir", family_dir, "--family", family,
            "--method", method]
    if task is not None:
        argv += ["--task", task]
    if secrets_file:
        argv += ["--secrets", secrets_file]
    if input_file:
        argv += ["--input", input_file]
    if timeout:
        argv += ["--timeout", str(timeout)]
    if protected_log:
        argv += ["--protected-log"]
    env = {"PATH": SECURE_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    proc = subprocess.Popen(argv, cwd=family_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    # The family runs in its own session: when we are told to stop (the runner's time-out sends SIGTERM to
    # our process group), everything it started goes too.
    def stop(signum, frame):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        os._exit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    import threading
    chunks = []

    def pump():
        while True:
            data = proc.stderr.read1(65536) if hasattr(proc.stderr, "read1") else proc.stderr.read(65536)
            if not data:
                break
            chunks.append(data)
            if stream is not None:
                stream.write(data)
                stream.flush()

    t = threading.Thread(target=pump)
    t.daemon = True
    t.start()
    out = proc.stdout.read()
    proc.wait()
    t.join(5)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    output = b"".join(chunks).decode("utf-8", "replace")
    try:
        report = json.loads(out.decode("utf-8")) if out.strip() else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        report = {"ok": False, "method": method, "error": {
            "kind": "bridge", "message": "the family bridge ended (exit %s) without a result" % proc.returncode}}
    return Call(report, output)


def failure_text(call):
    error = call.report.get("error") or {}
    text = error.get("message") or "failed"
    tail = call.output.strip()[-3000:]
    if error.get("traceback"):
        text += "\n" + error["traceback"].strip()[-3000:]
    elif tail:
        text += "\nIts output ended with:\n" + tail
    return text


# --- users, groups, folders -------------------------------------------------------------------------------

def ensure_group():
    try:
        grp.getgrnam(PROTECTED_GROUP)
        step("group", "in place", "the system group %s exists" % PROTECTED_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", PROTECTED_GROUP], check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
        step("group", "changed", "created the system group %s" % PROTECTED_GROUP)


def ensure_agent():
    try:
        pw = pwd.getpwnam(AGENT)
    except KeyError:
        argv = ["useradd", "--create-home", "--home-dir", AGENT_HOME, "--shell", "/bin/bash"]
        try:
            grp.getgrnam(AGENT)
            argv += ["--gid", AGENT]
        except KeyError:
            argv += ["--user-group"]
        try:
            pwd.getpwuid(1000)
        except KeyError:
            argv += ["--uid", "1000"]  # METR's image: agent is uid 1000
        subprocess.run(argv + [AGENT], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # No password, but not locked ("!"): an SSH key can log in, as for the participants prepare creates.
        subprocess.run(["usermod", "-p", "*", AGENT], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        pw = pwd.getpwnam(AGENT)
        step("agent", "changed", "created the participant's login %s (uid %d, home %s)" % (AGENT, pw.pw_uid, AGENT_HOME))
        return pw
    if pw.pw_dir.rstrip("/") != AGENT_HOME:
        raise Refused("the user %s exists with the home %s; METR task families expect %s (scorers live at "
                      "/home/agent/score.py): change its home (usermod -d %s -m %s) and run prepare again"
                      % (AGENT, pw.pw_dir, AGENT_HOME, AGENT_HOME, AGENT))
    if not os.path.isdir(AGENT_HOME):
        os.makedirs(AGENT_HOME, mode=0o750)
        os.chown(AGENT_HOME, pw.pw_uid, pw.pw_gid)
        step("agent", "changed", "created %s for the existing user %s" % (AGENT_HOME, AGENT))
    else:
        step("agent", "in place", "the participant's login %s exists (uid %d, home %s)" % (AGENT, pw.pw_uid, AGENT_HOME))
    return pw


def ensure_protected_dir():
    gid = grp.getgrnam(PROTECTED_GROUP).gr_gid
    if os.path.islink(PROTECTED_DIR):
        raise Refused("%s is a symbolic link; remove it and run prepare again" % PROTECTED_DIR)
    created = not os.path.isdir(PROTECTED_DIR)
    if created:
        os.mkdir(PROTECTED_DIR, 0o750)
    st = os.stat(PROTECTED_DIR)
    if created or st.st_uid != 0 or st.st_gid != gid or stat.S_IMODE(st.st_mode) != 0o750:
        os.chown(PROTECTED_DIR, 0, gid)
        os.chmod(PROTECTED_DIR, 0o750)
        step("protected", "changed", "%s is root:%s 0750 (u=rwX,g=rX,o=)" % (PROTECTED_DIR, PROTECTED_GROUP))
    else:
        step("protected", "in place", "%s is root:%s 0750" % (PROTECTED_DIR, PROTECTED_GROUP))


def give_home_to_agent(pw):
    """chown -R agent:agent /home/agent, leaving files of group `protected` as they are (METR's driver)."""
    gid = grp.getgrnam(PROTECTED_GROUP).gr_gid
    changed = 0
    for dirpath, dirnames, filenames in os.walk(AGENT_HOME):
        for name in [""] + dirnames + filenames:
            path = os.path.join(dirpath, name) if name else dirpath
            if name == "" and dirpath != AGENT_HOME:
                continue
            st = os.lstat(path)
            if st.st_gid == gid:
                continue
            if st.st_uid != pw.pw_uid or st.st_gid != pw.pw_gid:
                os.lchown(path, pw.pw_uid, pw.pw_gid)
                changed += 1
    step("home", "changed" if changed else "in place",
         "%s belongs to %s%s (files of group %s left as they are)" % (
             AGENT_HOME, AGENT, " (%d paths given)" % changed if changed else "", PROTECTED_GROUP))


# --- requirements.txt -------------------------------------------------------------------------------------

def index_url(python):
    for name in ("PIP_INDEX_URL",):
        if os.environ.get(name):
            return os.environ[name]
    try:
        out = subprocess.run([python, "-m", "pip", "config", "get", "global.index-url"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return DEFAULT_INDEX


def reachable(url, timeout=10):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return os.path.exists(parts.path)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
        return True
    except (OSError, TypeError):
        return False


def ensure_requirements(python, family_dir, state, item="requirements"):
    req = os.path.join(family_dir, "requirements.txt")
    if not os.path.isfile(req):
        step(item, "skipped", "the family has no requirements.txt")
        return None
    with open(req, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if state and state.get("requirements_sha256") == digest and state.get("requirements_python") == python:
        step(item, "in place", "requirements.txt was installed for %s" % python)
        return digest
    pip = subprocess.run([python, "-m", "pip", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    if pip.returncode != 0:
        raise Refused("the family has a requirements.txt, but pip is not installed for %s (%s): install it (on Debian: "
                      "apt-get install python3-pip) or name a Python that has it with --family-python, then run prepare "
                      "again" % (python, pip.stdout.strip()[-300:]))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_BREAK_SYSTEM_PACKAGES="1", PIP_NO_INPUT="1")
    offline = subprocess.run([python, "-m", "pip", "install", "--no-index", "-r", req], cwd=family_dir, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if offline.returncode == 0:
        step(item, "in place" if "Successfully installed" not in offline.stdout else "changed",
             "requirements.txt is satisfied for %s" % python)
        return digest
    url = index_url(python)
    if not reachable(url):
        missing = [line.strip() for line in offline.stdout.splitlines() if "No matching distribution" in line or
                   "Could not find a version" in line]
        raise Refused("requirements.txt needs packages that are not installed for %s, and the package index %s "
                      "cannot be reached from this machine. pip said: %s. Give the machine access to an index (or "
                      "set PIP_INDEX_URL for root to a mirror it can reach), or install them with %s -m pip by hand, "
                      "then run prepare again" % (python, url, "; ".join(missing) or offline.stdout.strip()[-800:],
                                                  python))
    online = subprocess.run([python, "-m", "pip", "install", "-r", req], cwd=family_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if online.returncode != 0:
        raise Refused("pip install -r requirements.txt failed for %s:\n%s" % (python, online.stdout.strip()[-3000:]))
    step(item, "changed", "installed requirements.txt with %s -m pip" % python)
    return digest


# --- prepare ----------------------------------------------------------------------------------------------

def describe_in_staging(python, src, family, task, secrets_text):
    staging = tempfile.mkdtemp(prefix="rebench-metr-")
    try:
        os.chmod(staging, 0o700)
        copy = os.path.join(staging, family)
        shutil.copytree(src, copy, symlinks=True)
        secrets_path = None
        if secrets_text is not None:
            secrets_path = os.path.join(staging, "secrets.env")
            write_private(secrets_path, secrets_text.encode("utf-8"))
        call = run_bridge(python, copy, family, "describe", task, secrets_path, timeout=DESCRIBE_TIMEOUT_S)
        return call
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def refusal_for(call):
    error = call.report.get("error") or {}
    kind = error.get("kind")
    if kind == "missing-secret":
        return "%s; give the secrets file with --secrets (NAME=VALUE lines). Nothing was changed." % error.get("message")
    if kind == "task":
        return "%s. Nothing was changed." % error.get("message")
    return "the family could not be read (%s): %s\nNothing was changed." % (kind, failure_text(call))


def prepare(args):
    if os.geteuid() != 0:
        raise Refused("prepare sets up users, /protected and root-only files, so it must run as root")
    src = os.path.abspath(args.family_src)
    family = args.family or os.path.basename(src.rstrip("/"))
    if not FAMILY_NAME.match(family):
        raise Refused("the family's name %r is not a Python module name: the folder (or --family) must be named like "
                      "its <family>.py" % family)
    if not os.path.isfile(os.path.join(src, family + ".py")):
        raise Refused("%s has no %s.py; a METR task family folder holds <family>.py named like the folder" % (src, family))
    python, version = find_family_python(args.family_python)
    step("python", "in place", "the family runs with %s (Python %s)" % (python, ".".join(map(str, version))))
    state = read_state()

    secrets_text = None
    if args.secrets:
        try:
            with open(args.secrets, "rb") as f:
                secrets_text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise Refused("cannot read the secrets file %s: %s" % (args.secrets, e))
        try:
            bridge.parse_secrets(secrets_text, "the secrets file")
        except bridge.BridgeError as e:
            raise Refused(e.message + ". Nothing was changed.")
    elif os.path.isfile(SECRETS_FILE):
        with open(SECRETS_FILE, "rb") as f:
            secrets_text = f.read().decode("utf-8")

    source_hash = tree_hash(src)
    if state and (state.get("family") != family or state.get("task") != args.task or
                  state.get("source_sha256") != source_hash) and (state.get("start") or {}).get("began_at") and not args.force:
        raise Refused("this machine already runs %s task %s, started at %s; a different family, task or family version "
                      "would run start() again, which truncates METR's score log. Nothing was changed. Run with --force to "
                      "replace it anyway." % (state.get("family"), state.get("task"), state["start"]["began_at"]))

    # 1. everything that can refuse, before anything changes
    call = describe_in_staging(python, src, family, args.task, secrets_text)
    if not call.report.get("ok") and (call.report.get("error") or {}).get("kind") == "import" and \
            os.path.isfile(os.path.join(src, "requirements.txt")) and "ModuleNotFoundError" in str(call.report):
        step("requirements", "changed", "the family needs its requirements.txt before it can be imported; installing it")
        ensure_requirements(python, src, state, item="requirements")
        call = describe_in_staging(python, src, family, args.task, secrets_text)
    if not call.report.get("ok"):
        raise Refused(refusal_for(call))
    info = call.report["value"]
    if info.get("aux_vm_spec") is not None:
        raise Refused("task %s asks for an auxiliary VM (get_aux_vm_spec returned %s); this driver runs a task on one "
                      "machine only, so it refuses the task. Nothing was changed."
                      % (args.task, json.dumps(info["aux_vm_spec"], sort_keys=True)[:500]))
    if info.get("scoring") == "none":
        raise Refused("the family has neither score(t, submission) nor intermediate_score(t), so nothing could score "
                      "a session. Nothing was changed.")
    if info.get("scoring") == "intermediate" and not info.get("has_aggregate_scores"):
        step("check", "in place", "the family has intermediate_score but no aggregate_scores; only our own "
                                  "aggregation will be recorded")
    step("check", "in place", "%s task %s: %s scoring, %d required environment variable(s), no auxiliary VM" % (
        family, args.task, info.get("scoring"), len(info.get("required_environment_variables") or [])))

    # requirements.txt last among the checks: a failure leaves everything else as it was
    digest = ensure_requirements(python, src, state)

    # 2-3
    ensure_group()
    pw = ensure_agent()
    ensure_protected_dir()
    ensure_state_dir()
    new_state = dict(state or {})
    if state and (state.get("family") != family or state.get("task") != args.task):
        new_state = {}

    # 4. secrets
    if args.secrets:
        data = secrets_text.encode("utf-8")
        old = None
        if os.path.isfile(SECRETS_FILE):
            with open(SECRETS_FILE, "rb") as f:
                old = f.read()
        if old == data and stat.S_IMODE(os.stat(SECRETS_FILE).st_mode) == 0o600:
            step("secrets", "in place", "the secrets are stored root-only in %s" % SECRETS_FILE)
        else:
            write_private(SECRETS_FILE, data)
            step("secrets", "changed", "stored the secrets root-only in %s (names: %s)" % (
                SECRETS_FILE, ", ".join(sorted(bridge.parse_secrets(secrets_text, "secrets"))) or "none"))
    elif info.get("required_environment_variables"):
        step("secrets", "in place", "the secrets stored in %s set what the family needs" % SECRETS_FILE)
    else:
        step("secrets", "skipped", "the family needs no environment variables")

    # 5. the family
    root = os.path.abspath(args.family_root)
    if new_state.get("source_sha256") == source_hash and new_state.get("family_root") == root and \
            os.path.isfile(os.path.join(root, family + ".py")):
        step("family", "in place", "%s is installed root-only in %s" % (family, root))
    else:
        files = copy_family(src, root, new_state.get("files") if new_state.get("family_root") == root else None)
        os.chown(root, 0, 0)
        os.chmod(root, 0o700)
        new_state.update({"family": family, "task": args.task, "family_root": root, "source_sha256": source_hash,
                          "files": files, "installed_at": now()})
        new_state.pop("install_ran_at", None)
        step("family", "changed", "copied %s into %s, root-only (%d files and folders)" % (family, root, len(files)))
    new_state.update({"family": family, "task": args.task, "family_python": python,
                      "family_python_version": ".".join(map(str, version)), "scoring": info.get("scoring"),
                      "has_aggregate_scores": bool(info.get("has_aggregate_scores"))})
    save_state(new_state)

    if digest:
        new_state.update({"requirements_sha256": digest, "requirements_python": python})
        save_state(new_state)

    secrets_path = SECRETS_FILE if os.path.isfile(SECRETS_FILE) else None
    # 7. install()
    if not info.get("has_install"):
        step("install", "skipped", "the family has no install()")
    elif new_state.get("install_ran_at"):
        step("install", "in place", "install() ran at %s" % new_state["install_ran_at"])
    else:
        call = run_bridge(python, root, family, "install", None, secrets_path, timeout=INSTALL_TIMEOUT_S, stream=sys.stderr.buffer)
        if not call.report.get("ok"):
            raise Refused("TaskFamily.install() failed: %s" % failure_text(call))
        new_state["install_ran_at"] = now()
        save_state(new_state)
        step("install", "changed", "ran install()")

    # 8. start(t)
    start = new_state.get("start") or {}
    if start.get("finished_at") and not args.rerun_start:
        step("start", "in place", "start(t) already ran at %s; not run again (it would start the task over, and for "
                                  "METR's protected scoring truncate /protected/score.log)" % start["finished_at"])
    elif start.get("began_at") and not args.rerun_start:
        raise Refused("start(t) began at %s and did not finish; look at the machine, then run prepare with "
                      "--rerun-start to run it again" % start["began_at"])
    else:
        new_state["start"] = {"began_at": now()}
        save_state(new_state)
        log_before = file_identity(bridge.PROTECTED_SCORE_LOG)
        call = run_bridge(python, root, family, "start", args.task, secrets_path, timeout=START_TIMEOUT_S, stream=sys.stderr.buffer)
        log_after = file_identity(bridge.PROTECTED_SCORE_LOG)
        # METR's protected scoring makes its log in start(t) (setup_scoring): then a run that adds no row to it
        # has no new score.
        new_state["protected_log"] = log_after is not None and log_after != log_before
        if not call.report.get("ok"):
            raise Refused("TaskFamily.start(t) failed: %s\nFix the cause, then run prepare with --rerun-start"
                          % failure_text(call))
        new_state["start"]["finished_at"] = now()
        new_state["start"]["ran"] = bool(call.report.get("ran"))
        save_state(new_state)
        step("start", "changed", ("ran start(t)" if call.report.get("ran") else "the family has no start(t)") + (
            "; it set up METR's protected scoring log %s" % bridge.PROTECTED_SCORE_LOG if new_state["protected_log"] else ""))

    # 9. /home/agent
    give_home_to_agent(pw)
    emit({"type": "result", "family": family, "task": args.task, "family_root": root, "family_python": python,
          "family_python_version": ".".join(map(str, version)), "describe": info,
          "started_at": new_state["start"].get("finished_at")})


def file_identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def installed():
    state = read_state()
    if not state or not state.get("family"):
        raise Refused("no METR task family is installed on this machine (%s is missing): run prepare first" % STATE_FILE)
    return state


def call_command(args):
    if os.geteuid() != 0:
        raise Refused("family calls run as root; run this as root")
    state = installed()
    staged = None
    if args.runner_result:
        result_file, job = runner_target(args)
        if args.input:
            raise Refused("--runner-result reads its input from the runner's job folder, never from --input")
        if args.method in ("score", "aggregate_scores"):
            args.input = staged = runner_input(args.method, os.path.dirname(os.path.dirname(result_file)))
    secrets_path = SECRETS_FILE if os.path.isfile(SECRETS_FILE) else None
    task = state["task"] if args.method in bridge.TASK_METHODS else None
    try:
        call = run_bridge(state["family_python"], state["family_root"], state["family"], args.method, task,
                          secrets_path, input_file=args.input, timeout=args.timeout, stream=sys.stderr.buffer,
                          protected_log=bool(state.get("protected_log")))
    finally:
        if staged:
            shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
    result = call.report
    if args.runner_result:
        return runner_result(args, call)
    if args.entry:
        if args.method == "intermediate_score":
            result = entries.intermediate_entry(call.report)
        elif args.method == "score":
            result = entries.end_entry(call.report)
        else:
            raise Refused("--entry is for intermediate_score and score only")
    data = (json.dumps(result, sort_keys=True, allow_nan=False) + "\n").encode()
    if args.result_file:
        write_private(args.result_file, data, 0o644)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def starting_score(args):
    """One intermediate score right after start(t), recorded once: a second call returns the record."""
    if os.geteuid() != 0:
        raise Refused("family calls run as root; run this as root")
    state = installed()
    if not (state.get("start") or {}).get("finished_at"):
        raise Refused("start(t) has not run on this machine: run prepare first")
    if state.get("starting"):
        emit(dict(state["starting"], type="starting", status="in place"))
        return
    if not state.get("scoring") == "intermediate":
        raise Refused("the family scores at the end only (score(t, submission)): it has no intermediate score to "
                      "measure; give the starting score yourself")
    secrets_path = SECRETS_FILE if os.path.isfile(SECRETS_FILE) else None
    call = run_bridge(state["family_python"], state["family_root"], state["family"], "intermediate_score",
                      state["task"], secrets_path, timeout=args.timeout, stream=sys.stderr.buffer,
                      protected_log=bool(state.get("protected_log")))
    entry = entries.intermediate_entry(call.report)
    record = {"score": entry["score"], "message": entry["message"], "measured_at": now()}
    state["starting"] = record
    save_state(state)
    emit(dict(record, type="starting", status="changed"))


def runner_target(args):
    """(result file, job id) for --runner-result, checked before the family runs."""
    result_file = args.result_file or os.environ.get("REBENCH_RESULT_FILE")
    job = args.job_id or os.environ.get("REBENCH_JOB_ID", "")
    # Run as root for the scoring user: write only where the runner's job layout puts a result
    # (<state>/jobs/<job>/result/result.json), never an arbitrary file.
    if result_file and not (os.path.isabs(result_file) and os.path.basename(result_file) == "result.json" and
                            os.path.basename(os.path.dirname(result_file)) == "result" and
                            os.path.basename(os.path.dirname(os.path.dirname(result_file))) == job):
        raise Refused("the result file must be <jobs>/%s/result/result.json, as the runner lays jobs out, not %r"
                      % (job, result_file))
    if not result_file or not re.match(r"^[A-Za-z0-9T._-]{1,100}$", job):
        raise Refused("--runner-result needs REBENCH_RESULT_FILE and REBENCH_JOB_ID, which the runner sets")
    return result_file, job


def read_job_file(path, limit=bridge.MAX_SUBMISSION_BYTES):
    """A file of the runner's job folder, read as root: a plain file, not a link, of bounded size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise Refused("cannot read %s: %s" % (path, e.strerror))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("%s is not a plain file" % path)
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Refused("%s is larger than %d bytes" % (path, limit))
    return data


def metr_score_log(items):
    """METR's score log for aggregate_scores from the runner's counted entries (in order): what the family's
    intermediate_score returned for each run (its details record, root-only), as METR's driver would hand it
    over; a run whose call failed is a NaN score, as METR logs it."""
    log = []
    for item in items if isinstance(items, list) else []:
        job = item.get("job_id") if isinstance(item, dict) else None
        report = None
        if isinstance(job, str) and re.match(r"^[A-Za-z0-9T._-]{1,100}$", job):
            try:
                with open(os.path.join(STATE_DIR, "details", job + ".json")) as f:
                    report = json.load(f).get("report")
            except (OSError, ValueError, AttributeError):
                report = None
        value = report.get("value") if isinstance(report, dict) and report.get("ok") else None
        if isinstance(value, dict) and "score" in value:
            log.append({"score": value.get("score"), "message": value.get("message") or {},
                        "details": value.get("details") or {}})
        elif isinstance(item, dict):
            score = item.get("score")
            log.append({"score": score if isinstance(score, (int, float)) else {"non_finite": "nan"},
                        "message": {"message": item.get("message", "")}, "details": {}})
    return log


def runner_input(method, job_dir):
    """The family's input for a runner job, staged root-only: the submitted answer (score) or METR's score log
    built from the runner's counted entries (aggregate_scores)."""
    if method == "score":
        data = read_job_file(os.path.join(job_dir, "submission.txt"))
    else:
        try:
            items = json.loads(read_job_file(os.path.join(job_dir, "score-log.json")).decode("utf-8"))
        except ValueError as e:
            raise Refused("the runner's score log for the aggregate is not JSON: %s" % e)
        data = json.dumps(metr_score_log(items), allow_nan=False).encode()
    stage = tempfile.mkdtemp(prefix="rebench-metr-input-")
    path = os.path.join(stage, "input")
    write_private(path, data)
    return path


def aggregate_entry(report):
    """Our record of METR's aggregate from bridge.py's report of aggregate_scores: a finite number, or no score
    (NaN, null, a failure) with the reason; never 0 for nothing."""
    if not isinstance(report, dict) or report.get("ok") is not True:
        error = (report or {}).get("error") or {}
        return {"score": None, "message": "No score: aggregate_scores failed (%s)" % (error.get("message") or "no result")}
    value = report.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = value.get("non_finite") if isinstance(value, dict) and "non_finite" in value else json.dumps(value)[:100]
        return {"score": None, "message": "No score: aggregate_scores returned %s, not a finite number" % shown}
    return {"score": float(value), "message": "METR's aggregate_scores over the counted runs"}


def runner_result(args, call):
    """As the runner's scoring command: our result ({"score", "message"}) to $REBENCH_RESULT_FILE; the
    details and the whole report (tracebacks included), for the organiser only, to a root-only file named
    after $REBENCH_JOB_ID in <state-dir>/details/."""
    if args.method == "intermediate_score":
        entry = entries.intermediate_entry(call.report)
    elif args.method == "score":
        entry = entries.end_entry(call.report)
    elif args.method == "aggregate_scores":
        entry = aggregate_entry(call.report)
    else:
        raise Refused("--runner-result is for intermediate_score, score and aggregate_scores only")
    result_file, job = runner_target(args)
    details_dir = os.path.join(STATE_DIR, "details")
    os.makedirs(details_dir, mode=0o700, exist_ok=True)
    os.chmod(details_dir, 0o700)
    write_private(os.path.join(details_dir, job + ".json"), (json.dumps(
        {"job_id": job, "method": args.method, "entry": entry, "report": call.report}, sort_keys=True,
        allow_nan=False) + "\n").encode())
    ours = {"score": entry["score"], "message": entry["message"]}
    if entry.get("manual"):
        ours["manual"] = True
    write_private(result_file, (json.dumps(ours, allow_nan=False) + "\n").encode(), 0o644)


SCORING_LIB = "/usr/local/lib/rebench-metr"
SCORING_SUDOERS = "/etc/sudoers.d/rebench-metr"
SCORING_TIMEOUT_MARGIN_S = 15


def scoring_argv(python, timeout, method="intermediate_score"):
    """The command the scoring user runs through its sudo rule (the rule names exactly this, with any
    arguments after it for the result file and the job id)."""
    return [python, "-B", SCORING_LIB + "/machine.py", "--state-dir", STATE_DIR, "call", "--method",
            method, "--timeout", "%d" % timeout, "--runner-result"]


def runner_command(argv):
    return ["sh", "-c", "exec sudo -n %s --result-file \"$REBENCH_RESULT_FILE\" --job-id \"$REBENCH_JOB_ID\""
            % " ".join(argv)]


def install_scoring(args):
    """Installs environments/metr root-owned in /usr/local/lib/rebench-metr and one sudo rule: the runner's
    scoring user may run exactly the intermediate score of the installed family as root (the family calls
    need root; the scoring user never runs the participant's code itself)."""
    if os.geteuid() != 0:
        raise Refused("install-scoring installs a sudo rule, so it must run as root")
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", args.scoring_user) or args.scoring_user in ("root", AGENT):
        raise Refused("the scoring user %r must be a user name other than root and the participant %s"
                      % (args.scoring_user, AGENT))
    try:
        if pwd.getpwnam(args.scoring_user).pw_uid == 0:
            raise Refused("the scoring user %s has uid 0" % args.scoring_user)
    except KeyError:
        pass  # provisioning the runner creates it
    python = os.path.realpath(sys.executable)
    os.makedirs(SCORING_LIB, mode=0o755, exist_ok=True)
    os.chown(SCORING_LIB, 0, 0)
    os.chmod(SCORING_LIB, 0o755)
    changed = False
    for name in ("bridge.py", "entries.py", "machine.py"):
        with open(os.path.join(HERE, name), "rb") as f:
            data = f.read()
        dest = os.path.join(SCORING_LIB, name)
        old = None
        if os.path.isfile(dest):
            with open(dest, "rb") as f:
                old = f.read()
        if old != data or stat.S_IMODE(os.stat(dest).st_mode) != 0o644:
            write_private(dest, data, 0o644)
            changed = True
    state = installed()
    end = state.get("scoring") == "end"
    argv = scoring_argv(python, args.timeout - SCORING_TIMEOUT_MARGIN_S, "score" if end else "intermediate_score")
    rules = [argv]
    aggregate = None
    if not end and state.get("has_aggregate_scores"):
        aggregate = scoring_argv(python, args.timeout - SCORING_TIMEOUT_MARGIN_S, "aggregate_scores")
        rules.append(aggregate)
    rule = ("# Written by environments/metr/machine.py install-scoring: the runner's scoring user runs the METR\n"
            "# family's %s as root, and nothing else.\n"
            "Defaults:%s !requiretty\n%s" % (
                "score of the submitted answer" if end else "intermediate score and aggregate_scores",
                args.scoring_user, "".join("%s ALL=(root) NOPASSWD: %s *\n" % (args.scoring_user, " ".join(a))
                                          for a in rules)))
    old = None
    if os.path.isfile(SCORING_SUDOERS):
        with open(SCORING_SUDOERS) as f:
            old = f.read()
    if old != rule:
        tmp = os.path.join(os.path.dirname(SCORING_SUDOERS), ".rebench-metr.tmp")
        write_private(tmp, rule.encode(), 0o440)
        check = subprocess.run(["visudo", "-cf", tmp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
        if check.returncode != 0:
            os.remove(tmp)
            raise Refused("the sudo rule for the scoring user did not pass visudo: %s" % check.stdout.strip())
        os.replace(tmp, SCORING_SUDOERS)
        changed = True
    line = {"type": "scoring", "status": "changed" if changed else "in place", "command": runner_command(argv),
            "message": "%s can run the family's %s as root (%s)" % (
                args.scoring_user, "score(t, submission)" if end else "intermediate score" + (
                    " and aggregate_scores" if aggregate else ""), SCORING_SUDOERS)}
    if aggregate:
        line["aggregate_command"] = runner_command(aggregate)
    emit(line)


def main(argv):
    parser = argparse.ArgumentParser(prog="machine.py")
    parser.add_argument("--state-dir", default=STATE_DIR, help="root-only folder of the set-up's record and secrets")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("prepare")
    p.add_argument("--family-src", required=True)
    p.add_argument("--family")
    p.add_argument("--task", required=True)
    p.add_argument("--family-python")
    p.add_argument("--secrets")
    p.add_argument("--family-root", default="/root")
    p.add_argument("--force", action="store_true")
    p.add_argument("--rerun-start", action="store_true")
    c = sub.add_parser("call")
    c.add_argument("--method", required=True, choices=bridge.METHODS)
    c.add_argument("--input")
    c.add_argument("--result-file")
    c.add_argument("--timeout", type=float)
    c.add_argument("--entry", action="store_true")
    c.add_argument("--job-id", help="with --runner-result: the runner's job id (else $REBENCH_JOB_ID)")
    c.add_argument("--runner-result", action="store_true",
                   help="as the runner's scoring command: the result to $REBENCH_RESULT_FILE, details root-only")
    i = sub.add_parser("install-scoring")
    i.add_argument("--scoring-user", required=True)
    i.add_argument("--timeout", type=int, required=True, help="the environment's scoring timeout_s")
    m = sub.add_parser("starting-score")
    m.add_argument("--timeout", type=float, default=3600)
    sub.add_parser("state")
    args = parser.parse_args(argv)
    set_state_dir(args.state_dir)
    try:
        if args.command == "prepare":
            prepare(args)
        elif args.command == "call":
            call_command(args)
        elif args.command == "install-scoring":
            install_scoring(args)
        elif args.command == "starting-score":
            starting_score(args)
        elif args.command == "state":
            state = read_state()
            emit({"type": "state", "state": {k: v for k, v in (state or {}).items() if k != "files"}})
        else:
            parser.error("a command is needed: prepare, call or state")
    except Refused as e:
        emit({"type": "error", "message": str(e)})
        return 1
    except subprocess.CalledProcessError as e:
        emit({"type": "error", "message": "%s failed: %s" % (" ".join(e.cmd), (e.output or b"").decode("utf-8", "replace").strip())})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
