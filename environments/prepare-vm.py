"""What the organiser's `prepare` command runs on a VM as root, read from stdin (never stored there):

  python3 -I - inspect JSON         reports what is installed, as JSON; changes nothing
  python3 -I - add-participant JSON creates the participant's login and adds their public key
  python3 -I - measure JSON         runs the starting solution through the installed scorer once, as the
                                    scoring user, and records the score in /etc/rebench/starting-score.json

provision-protected.sh does the installing; this script only looks at its result, adds a login and
measures the starting score. Python 3.8+ standard library only. See src/organiser/prepare.ts.
"""

import grp
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys

HOME = "/etc/rebench"
RUNNER = "/usr/local/bin/rebench-runner"
SUDOERS = "/etc/sudoers.d/rebench"
SOLUTION_SUDOERS = SUDOERS + "-solution"  # the scoring user's rule: start python as the solution user
SANDBOX = HOME + "/sandbox.json"  # who runs the participant's code for scorers that run it
SCORER_SECRET = HOME + "/scorer-secret"
SOLUTION_USER = "rebench-solution"  # provision-protected.sh's default
STARTING_SCORE = HOME + "/starting-score.json"
# The measurement's own runner home: the scoring user's, outside the protected state, removed afterwards.
SCRATCH_PARENT = "/var/lib/rebench-prepare"
SCRATCH = SCRATCH_PARENT + "/starting-score"
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SKIPPED = (".git", "__pycache__")

os.environ["PATH"] = SECURE_PATH


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message):
    emit({"type": "error", "message": message})
    sys.exit(1)


def owner_of(st):
    def name(lookup, number):
        try:
            return lookup(number)[0]
        except KeyError:
            return str(number)
    return "%s:%s" % (name(pwd.getpwuid, st.st_uid), name(grp.getgrgid, st.st_gid))


def describe(path):
    """Owner and mode of a path without following a final link, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
    return {"owner": owner_of(st), "mode": "%04o" % stat.S_IMODE(st.st_mode), "kind": kind}


def tree_entries(root):
    """Relative paths under root in byte order, leaving out .git and __pycache__ as provisioning does."""
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED]
        for name in dirnames + [f for f in filenames if f not in SKIPPED]:
            items.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(items, key=lambda rel: rel.encode("utf-8", "surrogateescape"))


def tree_hash(root):
    """The runner's own hash of an environment folder (runner/envtree.py, imported from the installed runner,
    which is an archive of the runner's package); src/core/environmentTree.ts computes the same for the
    organiser's copy, so equal hashes mean the installed copy is that folder. None when the installed runner
    has no such module (a runner from before it) or refuses the folder (a link, a reference solution): either
    way the copy is not the organiser's and is installed again."""
    if RUNNER not in sys.path:
        sys.path.insert(0, RUNNER)
    try:
        from runner.envtree import TreeProblem, tree_hash as runner_tree_hash
    except ImportError:
        return None
    try:
        return runner_tree_hash(root)[0]
    except (TreeProblem, OSError):
        return None


def environment_problems(root, scorer_group):
    """Where the installed environment differs from what provisioning makes (owners and modes)."""
    problems = []

    def check(rel, want_owner, want_mode):
        info = describe(os.path.join(root, rel) if rel else root)
        if info is None:
            problems.append("%s is missing" % (rel or "the folder"))
        elif info["owner"] != want_owner or info["mode"] != want_mode:
            problems.append("%s is %s %s, not %s %s" % (rel or "the folder", info["owner"], info["mode"],
                                                        want_owner, want_mode))

    check("", "root:root", "0755")
    for rel in tree_entries(root):
        st = os.lstat(os.path.join(root, rel))
        hidden = rel == "protected" or rel.startswith("protected/")
        group = scorer_group if hidden else "root"
        if stat.S_ISLNK(st.st_mode):
            problems.append("%s is a symbolic link" % rel)
        elif stat.S_ISDIR(st.st_mode):
            check(rel, "root:%s" % group, "0750" if hidden else "0755")
        elif st.st_mode & 0o111:
            check(rel, "root:%s" % group, "0750" if hidden else "0755")
        else:
            check(rel, "root:%s" % group, "0640" if hidden else "0644")
        if len(problems) > 20:
            problems.append("and more")
            break
    return problems


def user_info(name):
    try:
        record = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        group = grp.getgrgid(record.pw_gid).gr_name
    except KeyError:
        group = str(record.pw_gid)
    groups = sorted({group} | {g.gr_name for g in grp.getgrall() if name in g.gr_mem})
    return {"uid": record.pw_uid, "gid": record.pw_gid, "group": group, "groups": groups,
            "home": record.pw_dir, "shell": record.pw_shell}


def run(argv, timeout=60):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env={"PATH": SECURE_PATH, "LANG": "C.UTF-8"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, "", str(e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def read_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"unreadable": "%s: %s" % (type(e).__name__, e)}


def sudo_rules(path):
    """Owner, mode and the rules (lines that are neither blank nor comments) of a sudoers file, or None."""
    info = describe(path)
    if info is None:
        return None
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            rules = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError as e:
        rules = ["(unreadable: %s)" % e]
    return dict(info, rules=rules)


def first_line_and_body_hash(path):
    with open(path, "rb") as f:
        data = f.read()
    first, sep, rest = data.partition(b"\n")
    return first.decode("utf-8", "replace"), hashlib.sha256(rest).hexdigest()


def which(name):
    return shutil.which(name, path=SECURE_PATH) is not None


# ---------------------------------------------------------------------------------------------------------

def cmd_inspect(args):
    env_id = args["environment"]
    participant = args["participant"]
    scorer = args["scoring_user"]
    out = {
        "type": "inspection",
        "python": {"path": sys.executable, "version": list(sys.version_info[:3])},
        "tools": {t: which(t) for t in ("visudo", "runuser", "useradd", "sudo", "bash", "tar")},
        "sudoers_includes_dir": False,
        "participant": user_info(participant),
        "scoring_user": user_info(scorer),
        "home": describe(HOME),
        "environments_dir": describe(HOME + "/environments"),
        "runner": None,
        "environment": None,
        "config": read_json(HOME + "/runner.json"),
        "config_file": describe(HOME + "/runner.json"),
        "state": describe(HOME + "/state"),
        "session": None,
        "solution": None,
        "sudoers": None,
        "participant_check": None,
        "starting_score": read_json(STARTING_SCORE),
        "scratch": os.path.isdir(SCRATCH),
        "solution_user": user_info(args.get("solution_user") or SOLUTION_USER),
        "sandbox": None,
        "scorer_secret": None,
        "solution_sudoers": sudo_rules(SOLUTION_SUDOERS),
    }
    info = describe(SANDBOX)
    if info is not None:
        out["sandbox"] = dict(info, config=read_json(SANDBOX) if info["kind"] == "file" else None)
    info = describe(SCORER_SECRET)
    if info is not None:  # its size only: the secret itself never leaves the VM
        out["scorer_secret"] = dict(info, bytes=os.lstat(SCORER_SECRET).st_size)
    try:
        with open("/etc/sudoers", "r", encoding="utf-8", errors="replace") as f:
            out["sudoers_includes_dir"] = any(
                line.split()[:2] in (["@includedir", "/etc/sudoers.d"], ["#includedir", "/etc/sudoers.d"])
                for line in f if line.strip())
    except OSError:
        pass
    if os.path.isfile(RUNNER):
        first, body = first_line_and_body_hash(RUNNER)
        out["runner"] = dict(describe(RUNNER), first_line=first, body_sha256=body)
    env_dir = "%s/environments/%s" % (HOME, env_id)
    if os.path.isdir(env_dir) and not os.path.islink(env_dir):
        group = out["scoring_user"]["group"] if out["scoring_user"] else scorer
        out["environment"] = {"sha256": tree_hash(env_dir), "problems": environment_problems(env_dir, group)}
    session = read_json(HOME + "/state/session.json")
    if session is not None:
        out["session"] = {"environment": session.get("environment") if isinstance(session, dict) else None,
                          "started_at": session.get("started_at") if isinstance(session, dict) else None}
    solution_dir = args.get("solution_dir") or (
        os.path.join(out["participant"]["home"], "solution") if out["participant"] else None)
    if solution_dir:
        info = describe(solution_dir)
        readable = None
        if info is not None and out["scoring_user"] and which("runuser"):
            code, _, _ = run(["runuser", "-u", scorer, "--", "test", "-r", solution_dir, "-a", "-x", solution_dir])
            readable = code == 0
        out["solution"] = {"path": solution_dir, "info": info, "scorer_can_read": readable}
    if os.path.exists(SUDOERS):
        out["sudoers"] = sudo_rules(SUDOERS)
        if out["participant"] and out["runner"] and which("runuser"):
            code, stdout, stderr = run(["runuser", "-u", participant, "--", "sudo", "-n", RUNNER, "status", "--json"])
            check = {"code": code, "mode": None, "environment": None, "error": None}
            try:
                status = json.loads(stdout)
                if "error" in status:
                    check["error"] = status["error"].get("message")
                else:
                    check["mode"] = status.get("mode")
                    check["environment"] = status.get("environment", {}).get("id")
            except (ValueError, AttributeError):
                check["error"] = (stderr or stdout).strip()[:500] or "no output"
            out["participant_check"] = check
    emit(out)


# ---------------------------------------------------------------------------------------------------------

ADD_KEY = r"""
import os, sys
key = sys.argv[1].strip()
blob = key.split()[1] if len(key.split()) >= 2 else key
ssh = os.path.expanduser("~/.ssh")
os.makedirs(ssh, mode=0o700, exist_ok=True)
path = os.path.join(ssh, "authorized_keys")
try:
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        lines = f.read()
except FileNotFoundError:
    lines = ""
if any(blob in line.split() for line in lines.splitlines() if not line.lstrip().startswith("#")):
    print("present")
else:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    # One write: a half-written line cannot spoil the keys already there.
    os.write(fd, (("" if not lines or lines.endswith("\n") else "\n") + key + "\n").encode("utf-8"))
    os.fsync(fd)
    os.close(fd)
    print("added")
"""


def cmd_add_participant(args):
    user = args["user"]
    key = (args.get("public_key") or "").strip()
    created = False
    if user_info(user) is None:
        code, _, err = run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", "RE-Bench participant", user])
        if code != 0:
            fail("useradd %s failed: %s" % (user, err.strip()))
        # A new account is locked ("!"); OpenSSH without PAM refuses locked accounts even with a key.
        # "*" allows no password login either, but is not "locked".
        code, _, err = run(["usermod", "-p", "*", user])
        if code != 0:
            fail("usermod -p '*' %s failed: %s" % (user, err.strip()))
        created = True
    info = user_info(user)
    added = False
    if key:
        # Written as the participant, not as root: their home is theirs, and root must not follow a link in it.
        code, stdout, err = run(["runuser", "-u", user, "--", sys.executable, "-I", "-c", ADD_KEY, key])
        if code != 0:
            fail("adding the public key to ~%s/.ssh/authorized_keys failed: %s" % (user, (err or stdout).strip()[:500]))
        added = stdout.strip() == "added"
    emit({"type": "participant", "created": created, "added_key": added, "home": info["home"]})


# ---------------------------------------------------------------------------------------------------------

def as_scorer(scorer, args):
    return ["runuser", "-u", scorer, "--", RUNNER, "--home", SCRATCH] + args + ["--json"]


def scorer_json(scorer, args, what, fatal=True):
    """Runs a runner command as the scoring user; its reply, or (fatal=False) None when it failed."""
    code, stdout, stderr = run(as_scorer(scorer, args), timeout=120)
    try:
        reply = json.loads(stdout)
    except ValueError:
        reply = {"error": {"message": "no JSON (exit %s): %s" % (code, (stderr or stdout).strip()[:800])}}
    if isinstance(reply, dict) and "error" in reply:
        message = "the runner's %s as %s failed: %s" % (what, scorer, (reply["error"] or {}).get("message"))
        if fatal:
            fail(message)
        # A measurement home the runner cannot read is started again rather than blocking every later run.
        emit({"type": "note", "message": message + "; starting the measurement again"})
        return None
    return reply


def follow(scorer, args):
    """Runs a streaming runner command as the scoring user; passes output on and returns the entry."""
    proc = subprocess.Popen(as_scorer(scorer, args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={"PATH": SECURE_PATH, "LANG": "C.UTF-8"})
    entry = None
    error = None
    for raw in proc.stdout:
        try:
            event = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            continue
        kind = event.get("type")
        if kind == "job":
            emit({"type": "job", "job_id": event.get("job_id")})
        elif kind == "output":
            emit({"type": "output", "text": event.get("text", "")})
        elif kind == "entry":
            entry = event.get("entry")
        elif kind == "error":
            error = (event.get("error") or {}).get("message")
        elif "error" in event:
            error = (event.get("error") or {}).get("message")
    stderr = proc.stderr.read().decode("utf-8", "replace")
    proc.wait()
    if entry is None:
        fail("the scoring run as %s did not finish with a score log entry: %s"
             % (scorer, error or stderr.strip()[:800] or "exit %s" % proc.returncode))
    return entry


def remove_scratch():
    if os.path.lexists(SCRATCH):
        shutil.rmtree(SCRATCH)


def cmd_measure(args):
    env_id = args["environment"]
    env_sha = args["environment_sha256"]
    scorer = args["scoring_user"]
    info = user_info(scorer)
    if info is None:
        fail("the scoring user %s does not exist; provisioning creates it, so run prepare again." % scorer)
    if not os.path.isfile(RUNNER):
        fail("%s is missing; provisioning installs it, so run prepare again." % RUNNER)
    env_dir = "%s/environments/%s" % (HOME, env_id)
    with open(os.path.join(env_dir, "manifest.json"), "r", encoding="utf-8") as f:
        manifest = json.load(f)
    if tree_hash(env_dir) != env_sha:
        fail("the installed environment %s is not the organiser's copy; run prepare again." % env_dir)

    entry = None
    resumed = False
    if os.path.isdir(SCRATCH) and not os.path.islink(SCRATCH):
        # An earlier, interrupted measurement: finish it rather than start a second scorer beside it.
        marker = read_json(os.path.join(SCRATCH, "prepare.json")) or {}
        if os.path.exists(os.path.join(SCRATCH, "runner.json")):
            status = scorer_json(scorer, ["status"], "status", fatal=False) or {}
            job = status.get("job")
            if job:
                emit({"type": "note", "message": "an earlier measurement's scoring job %s is still running; "
                                                 "waiting for it" % job["job_id"]})
                entry = follow(scorer, ["attach", job["job_id"]])
                resumed = True
            elif marker.get("environment_sha256") == env_sha:
                entries = (scorer_json(scorer, ["log"], "log", fatal=False) or {}).get("entries") or []
                if entries:
                    entry = entries[-1]
                    resumed = True
        if marker.get("environment_sha256") != env_sha:
            entry = None
            resumed = False
    if entry is None:
        remove_scratch()
        if not os.path.isdir(SCRATCH_PARENT):
            os.makedirs(SCRATCH_PARENT, mode=0o755)
        os.chmod(SCRATCH_PARENT, 0o755)
        os.mkdir(SCRATCH, 0o700)
        with open(os.path.join(SCRATCH, "prepare.json"), "w") as f:
            json.dump({"environment": env_id, "environment_sha256": env_sha}, f)
        os.chown(SCRATCH, info["uid"], info["gid"])
        scorer_json(scorer, ["setup", "--environment", env_id, "--environments-dir", HOME + "/environments",
                             "--solution-dir", SCRATCH + "/solution"], "setup")
        scorer_json(scorer, ["start"], "start")
        emit({"type": "note", "message": "scoring the starting solution as %s (scorer time limit %s s)"
                                         % (scorer, manifest["scoring"]["timeout_s"])})
        entry = follow(scorer, ["score", "--follow"])
    code, version, _ = run([RUNNER, "--version"])
    record = {
        "environment": env_id,
        "environment_version": manifest.get("version"),
        "environment_sha256": env_sha,
        "scoring_command": manifest["scoring"]["command"],
        "direction": manifest["scoring"]["direction"],
        "manifest_starting_score": manifest["scoring"]["starting_score"],
        "reference_score": manifest["scoring"]["reference_score"],
        "score": entry.get("score"),
        "message": entry.get("message"),
        "measured_at": entry.get("ended_at"),
        "duration_s": entry.get("duration_s"),
        "exit_code": entry.get("exit_code"),
        "timed_out": entry.get("timed_out"),
        "solution_hash": entry.get("solution_hash"),
        "scoring_user": scorer,
        "runner_version": version.strip() if code == 0 else None,
    }
    if record["score"] is not None:
        tmp = "%s.tmp-%d" % (STARTING_SCORE, os.getpid())
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o644)
        os.rename(tmp, STARTING_SCORE)
    remove_scratch()
    try:
        os.rmdir(SCRATCH_PARENT)
    except OSError:
        pass
    emit({"type": "measured", "record": record, "resumed": resumed})


COMMANDS = {"inspect": cmd_inspect, "add-participant": cmd_add_participant, "measure": cmd_measure}


def main(argv):
    if os.geteuid() != 0:
        fail("this must run as root (through sudo).")
    if len(argv) != 2 or argv[0] not in COMMANDS:
        fail("usage: prepare-vm.py {%s} JSON" % ",".join(sorted(COMMANDS)))
    try:
        args = json.loads(argv[1])
    except ValueError as e:
        fail("the arguments are not JSON: %s" % e)
    COMMANDS[argv[0]](args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
