#!/usr/bin/env python3
"""RE-Bench session runner.

The runner is the source of truth for one timed session on one machine: when the session started,
its deadline and pauses, and the score log. The VS Code extension and organisers talk to it through
this command line (see environments/README.md). Python 3.8+ standard library only, POSIX only.
"""

import argparse
import codecs
import errno
import fcntl
import json
import math
import os
import re
import signal
import sys
import time


class _LazyModule(object):
    """Imports a module on first use: most commands never need these, and every command's start-up
    time is time the participant waits."""

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        if self._module is None:
            self._module = __import__(self._name)
        return getattr(self._module, attr)


try:  # the interpreter's own SHA-256: hashlib would load OpenSSL first, a few ms on every command
    from _sha256 import sha256  # Python 3.8-3.11
except ImportError:
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256

csv = _LazyModule("csv")
select = _LazyModule("select")
shutil = _LazyModule("shutil")
subprocess = _LazyModule("subprocess")
traceback = _LazyModule("traceback")

RUNNER_VERSION = "1.0.0"

EXIT_CODES = {
    "ok": 0,
    "internal": 1,
    "usage": 2,
    "busy": 3,
    "refused": 4,
    "environment": 5,
    "integrity": 6,
}

DEFAULT_TIME_LIMIT_S = 8 * 3600
DEFAULT_OUTPUT_LIMIT = 1024 * 1024
PROTECTED_HOME = "/etc/rebench"
TERM_GRACE_S = 5.0  # between SIGTERM and SIGKILL when a scorer times out
DRAIN_AFTER_EXIT_S = 2.0  # how long to keep reading output after the scorer exited
MESSAGE_LIMIT = 4000  # characters of a scorer's message kept in the score log
RESULT_LIMIT = 1024 * 1024  # characters read from a result file (it holds a score and a message)
POLL_S = 0.1
# How long a request waits for a job that has written its entry to release the score lock.
FINISHING_JOB_WAIT_S = 2.0
GENESIS_PREFIX = "rebench-genesis:"
JOB_ID_RE = re.compile(r"^j[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
ISO_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$"
)


class RunnerError(Exception):
    """An error with one of the protocol's codes; its message says what is wrong and what to do."""

    def __init__(self, code, message, job=None):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.job = job


# ---------------------------------------------------------------------------------------------
# Time


def now_s():
    return time.time()


def iso(t):
    """UTC ISO 8601 with milliseconds and "Z"."""
    total_ms = int(round(t * 1000))
    secs, ms = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%03dZ" % ms


def parse_iso(text, assume_utc=False):
    """Seconds since the epoch for an ISO 8601 time; None when it is not one.

    A time without a zone is only accepted with assume_utc (METR's logs write local time without one).
    """
    if not isinstance(text, str):
        return None
    m = ISO_RE.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    fraction = float(m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    if zone is None and not assume_utc:
        return None
    base = timegm(year, month, day, hour, minute, sec)
    if base is None:
        return None
    offset = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        if zone[0] == "-":
            offset = -offset
    return base + fraction - offset


def timegm(year, month, day, hour, minute, sec):
    """Seconds since the epoch of a UTC time, as calendar.timegm counts them (day, hour, minute and second
    may run over into the next unit); None outside years 1-9999 or months 1-12. The calendar module is not
    imported for this: it costs every command a few milliseconds of start-up."""
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return None
    # Days from 1970-01-01 to the first of the month in the proleptic Gregorian calendar, counting years
    # from March so that the leap day comes last.
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (9 if month <= 2 else -3)) + 2) // 5
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468 + day - 1
    return ((days * 24 + hour) * 60 + minute) * 60 + sec


def round3(x):
    return float(round(x, 3))


# ---------------------------------------------------------------------------------------------
# Files: atomic writes, appends, locks


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the data itself is already synced
    finally:
        os.close(fd)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path, data, mode=0o644):
    """Replaces path with data so that a crash leaves either the old or the new file, never a mix."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(
        directory, ".%s.tmp-%d-%s" % (os.path.basename(path), os.getpid(), os.urandom(4).hex())
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(directory)


def write_json_atomic(path, obj, mode=0o644):
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"), mode)


def read_json(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def read_json_if_exists(path):
    try:
        return read_json(path)
    except FileNotFoundError:
        return None


def append_line_synced(path, line):
    """Appends one line with a single write and fsyncs it (for the events log)."""
    existed = os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_all(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if not existed:
        fsync_dir(os.path.dirname(path))


def make_dirs(path, mode=0o755):
    os.makedirs(path, mode=mode, exist_ok=True)


class FileLock(object):
    """A blocking exclusive flock, held for a short read-modify-write of session state."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None
        return False


def try_lock(path):
    """Takes an exclusive flock without waiting; returns the fd holding it, or None when taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


def clean_text(value, limit=None):
    """A string that encodes as UTF-8 (lone surrogates replaced), optionally shortened."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[:limit] + " [shortened]"
    return text


# ---------------------------------------------------------------------------------------------
# Manifest: the same rules as src/core/manifest.ts


ENV_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class ManifestProblem(Exception):
    pass


def _is_number(v):
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _is_int(v):
    return _is_number(v) and float(v).is_integer()


def _describe(v):
    return json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else str(v)


def _check_keys(obj, allowed, where):
    if not isinstance(obj, dict):
        raise ManifestProblem("%s: expected an object, got %s" % (where, _describe(obj)))
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise ManifestProblem(
            "%s: unknown field %s (allowed: %s)"
            % (where, ", ".join(repr(k) for k in unknown), ", ".join(sorted(allowed)))
        )


def _field(obj, key, where, check, expected, default=None, required=True):
    if key not in obj:
        if required:
            raise ManifestProblem("%s: required field is missing (expected %s)" % (where, expected))
        return default
    value = obj[key]
    if not check(value):
        raise ManifestProblem("%s: expected %s, got %s" % (where, expected, _describe(value)))
    return value


def _relative_path(v):
    return isinstance(v, str) and len(v) > 0 and not v.startswith("/") and ".." not in v.split("/")


def _int_range(lo, hi):
    return lambda v: _is_int(v) and lo <= v <= hi


def validate_manifest(raw):
    """Returns the manifest with defaults filled in; raises ManifestProblem naming the bad field."""
    top = (
        "id", "title", "version", "time_limit_s", "instructions", "instructions_before_start",
        "scoring", "solution", "hardware", "pauses_allowed",
    )
    _check_keys(raw, top, "(top level)")
    m = {}
    m["id"] = _field(raw, "id", "id", lambda v: isinstance(v, str) and ENV_ID_RE.match(v),
                     'lowercase letters, digits and "-", at most 64 characters')
    m["title"] = _field(raw, "title", "title", lambda v: isinstance(v, str) and 1 <= len(v) <= 200,
                        "a string of 1 to 200 characters")
    m["version"] = _field(raw, "version", "version", lambda v: isinstance(v, str) and 1 <= len(v) <= 40,
                          "a string of 1 to 40 characters")
    m["time_limit_s"] = int(_field(raw, "time_limit_s", "time_limit_s", _int_range(60, 7 * 86400),
                                   "a whole number of seconds from 60 to 604800",
                                   DEFAULT_TIME_LIMIT_S, required=False))
    path_rule = 'a path inside the environment folder (no leading "/" and no "..")'
    m["instructions"] = _field(raw, "instructions", "instructions", _relative_path, path_rule)
    m["instructions_before_start"] = _field(raw, "instructions_before_start", "instructions_before_start",
                                            lambda v: isinstance(v, bool), "true or false", False, False)
    if "scoring" not in raw:
        raise ManifestProblem("scoring: required field is missing (expected an object)")
    m["scoring"] = _validate_scoring(raw["scoring"])
    m["solution"] = _field(raw, "solution", "solution", _relative_path, path_rule)
    m["hardware"] = _validate_hardware(raw.get("hardware", {}))
    m["pauses_allowed"] = _field(raw, "pauses_allowed", "pauses_allowed", lambda v: isinstance(v, bool),
                                 "true or false", False, False)
    return m


def _validate_scoring(raw):
    allowed = ("command", "direction", "aggregation", "starting_score", "reference_score", "timeout_s",
               "output_limit_bytes", "calibration")
    _check_keys(raw, allowed, "scoring")
    s = {}
    s["command"] = _field(raw, "command", "scoring.command",
                          lambda v: isinstance(v, list) and len(v) >= 1
                          and all(isinstance(a, str) and a for a in v),
                          'a non-empty list of non-empty strings, e.g. ["{python}", "score.py"]')
    s["direction"] = _field(raw, "direction", "scoring.direction", lambda v: v in ("higher", "lower"),
                            "'higher' or 'lower'")
    s["aggregation"] = _field(raw, "aggregation", "scoring.aggregation", lambda v: v in ("best", "last"),
                              "'best' or 'last'")
    s["starting_score"] = float(_field(raw, "starting_score", "scoring.starting_score", _is_number,
                                       "a finite number"))
    s["reference_score"] = float(_field(raw, "reference_score", "scoring.reference_score", _is_number,
                                        "a finite number"))
    s["timeout_s"] = int(_field(raw, "timeout_s", "scoring.timeout_s", _int_range(1, 86400),
                                "a whole number of seconds from 1 to 86400"))
    s["output_limit_bytes"] = int(_field(raw, "output_limit_bytes", "scoring.output_limit_bytes",
                                         _int_range(1024, 64 * 1024 * 1024),
                                         "a whole number of bytes from 1024 to 67108864",
                                         DEFAULT_OUTPUT_LIMIT, False))
    if s["starting_score"] == s["reference_score"]:
        raise ManifestProblem("scoring: starting_score and reference_score must differ "
                              "(the normalised score divides by their difference)")
    if "calibration" in raw:
        s["calibration"] = _validate_calibration(raw["calibration"], "scoring.calibration")
    return s


def _text(lo, hi):
    return lambda v: isinstance(v, str) and lo <= len(v) <= hi


def _validate_calibration(raw, where):
    """The record of how starting_score and reference_score were measured; kept as written."""
    if not isinstance(raw, dict):
        raise ManifestProblem("%s: expected an object, got %s" % (where, _describe(raw)))
    _check_keys(raw, ("date", "gpu", "driver", "software", "starting", "reference", "method"), where)
    _field(raw, "date", where + ".date", lambda v: isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", v),
           "a date written YYYY-MM-DD")
    _field(raw, "gpu", where + ".gpu", _text(1, 200), "a string of 1 to 200 characters")
    _field(raw, "driver", where + ".driver", _text(1, 100), "a string of 1 to 100 characters")
    _field(raw, "software", where + ".software",
           lambda v: isinstance(v, dict) and all(_text(1, 40)(k) and _text(1, 100)(x) for k, x in v.items()),
           'an object of names to version strings, e.g. {"torch": "2.11.0"}')
    _field(raw, "method", where + ".method", _text(1, 2000), "a string of 1 to 2000 characters", None, False)
    for part in ("starting", "reference"):
        runs = _field(raw, part, "%s.%s" % (where, part), lambda v: isinstance(v, dict), "an object")
        at = "%s.%s" % (where, part)
        _check_keys(runs, ("runs", "median", "min", "max", "time_cv_percent"), at)
        _field(runs, "runs", at + ".runs", _int_range(1, 10000), "a whole number from 1 to 10000")
        for key in ("median", "min", "max"):
            _field(runs, key, "%s.%s" % (at, key), _is_number, "a finite number")
        _field(runs, "time_cv_percent", at + ".time_cv_percent", lambda v: _is_number(v) and v >= 0,
               "a number of at least 0", None, False)
    return raw


def _validate_hardware(raw):
    _check_keys(raw, ("gpus", "gpu_model", "min_free_disk_gb"), "hardware")
    return {
        "gpus": int(_field(raw, "gpus", "hardware.gpus", _int_range(0, 64), "a whole number from 0 to 64",
                           0, False)),
        "gpu_model": _field(raw, "gpu_model", "hardware.gpu_model",
                            lambda v: v is None or (isinstance(v, str) and len(v) >= 1),
                            "a non-empty string or null", None, False),
        "min_free_disk_gb": float(_field(raw, "min_free_disk_gb", "hardware.min_free_disk_gb",
                                         lambda v: _is_number(v) and v >= 0, "a number of at least 0",
                                         1, False)),
    }


def _reject_constant(name):
    raise ValueError("%s is not allowed in JSON" % name)


def load_environment(environments_dir, env_id):
    """Loads and checks <environments_dir>/<env_id>; raises an "environment" error saying what to fix."""
    if not isinstance(env_id, str) or not ENV_ID_RE.match(env_id):
        raise RunnerError("environment", "%r is not a valid environment id (lowercase letters, digits and "
                                         "\"-\"). Check the environment name and run setup again." % (env_id,))
    env_dir = os.path.join(environments_dir, env_id)
    manifest_path = os.path.join(env_dir, "manifest.json")
    if not os.path.isdir(env_dir):
        raise RunnerError("environment", "The environment %r is not installed: %s does not exist. Install the "
                                         "environment folder there (or pass --environments-dir to setup)."
                          % (env_id, env_dir))
    try:
        with open(manifest_path, "r", encoding="utf-8") as f:
            raw = json.load(f, parse_constant=_reject_constant)
    except FileNotFoundError:
        raise RunnerError("environment", "%s is missing. Every environment folder needs a manifest.json; "
                                         "reinstall the environment." % manifest_path)
    except (ValueError, UnicodeDecodeError) as e:
        raise RunnerError("environment", "%s is not valid JSON (%s). Fix the file and try again."
                          % (manifest_path, e))
    try:
        manifest = validate_manifest(raw)
    except ManifestProblem as e:
        raise RunnerError("environment", "%s is not a valid environment manifest: %s. Fix the manifest and "
                                         "try again." % (manifest_path, e))
    if manifest["id"] != env_id:
        raise RunnerError("environment", "%s: id is %r but the folder is named %r. They must match; rename "
                                         "one of them." % (manifest_path, manifest["id"], env_id))
    instructions = os.path.join(env_dir, manifest["instructions"])
    if not os.path.isfile(instructions):
        raise RunnerError("environment", "%s: instructions names %s, which does not exist. Add the file or fix "
                                         "the field." % (manifest_path, instructions))
    solution = os.path.join(env_dir, manifest["solution"])
    if not os.path.isdir(solution):
        raise RunnerError("environment", "%s: solution names %s, which is not a folder. Add the starting "
                                         "solution folder or fix the field." % (manifest_path, solution))
    return {"dir": env_dir, "manifest": manifest, "manifest_path": manifest_path}


# ---------------------------------------------------------------------------------------------
# Runner home and configuration


INSTALLED_RUNNER = "/usr/local/bin/rebench-runner"  # where environments/provision-protected.sh installs it


def privileged_call():
    """Whether this is the organiser's runner running as root: the installed runner, or this file run by sudo.

    Through the sudo rule a participant runs the runner as root with arguments of their choosing, so
    nothing they pass may point it at files of their choosing: another home could hold a runner.json
    naming their own scoring command, which would then run as root.
    """
    if os.geteuid() != 0:
        return False
    me = os.path.realpath(__file__)
    if me == os.path.realpath(INSTALLED_RUNNER):
        return True
    return any(os.path.realpath(token) == me for token in os.environ.get("SUDO_COMMAND", "").split())


def sudo_caller():
    """The user who ran the runner as root through sudo, or None (not sudo, or root itself)."""
    uid = os.environ.get("SUDO_UID")
    if os.geteuid() != 0 or not uid or uid == "0":
        return None
    return os.environ.get("SUDO_USER") or uid


def check_privileged_call(args):
    """Refuses what a root runner must not do for the caller (see privileged_call); returns the home."""
    if args.home and os.path.realpath(os.path.expanduser(args.home)) != os.path.realpath(PROTECTED_HOME):
        raise RunnerError("refused", "This runner runs as root for the protected session and uses only %s; "
                                     "--home %s is refused." % (PROTECTED_HOME, args.home))
    env_home = os.environ.get("REBENCH_HOME")
    if env_home and os.path.realpath(os.path.expanduser(env_home)) != os.path.realpath(PROTECTED_HOME):
        raise RunnerError("refused", "This runner runs as root for the protected session and uses only %s; "
                                     "unset REBENCH_HOME (%s)." % (PROTECTED_HOME, env_home))
    if args.command == "setup":
        raise RunnerError("refused", "setup is for unprotected mode and is refused when the runner runs as root: "
                                     "the organiser prepares protected mode (environments/provision-protected.sh).")
    caller = sudo_caller()
    if caller is not None and args.command == "export" and args.out:
        raise RunnerError("refused", "export --out is refused through sudo: the file would be written as root. "
                                     "Leave out --out and redirect the output instead, e.g. "
                                     "`sudo -n rebench-runner export --format jsonl > score-log.jsonl`.")
    if caller is not None and args.command == "import-metr-csv":
        raise RunnerError("refused", "import-metr-csv is refused through sudo: it would read files as root. It "
                                     "needs no privileges; run the runner without sudo for it.")
    path = os.path.join(PROTECTED_HOME, "runner.json")
    if args.command != "import-metr-csv":
        try:
            mode = read_json(path).get("mode")
        except (OSError, ValueError, AttributeError):
            mode = None
        if mode != "protected":
            raise RunnerError("environment", "This runner runs as root, but %s is missing or not in protected "
                                             "mode. Ask the organiser to set up protected mode "
                                             "(environments/provision-protected.sh)." % path)
    return PROTECTED_HOME


def resolve_home(flag):
    if flag:
        return os.path.abspath(os.path.expanduser(flag))
    if os.environ.get("REBENCH_HOME"):
        return os.path.abspath(os.path.expanduser(os.environ["REBENCH_HOME"]))
    if os.path.isfile(os.path.join(PROTECTED_HOME, "runner.json")):
        return PROTECTED_HOME
    return os.path.join(os.path.expanduser("~"), ".rebench")


CONFIG_KEYS = ("mode", "environment", "environments_dir", "state_dir", "solution_dir", "scoring_user")


def load_config(home):
    path = os.path.join(home, "runner.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise RunnerError("environment", "The runner is not set up in %s (no runner.json). Run: runner.py "
                                         "setup --environment <id>" % home)
    except (ValueError, UnicodeDecodeError) as e:
        raise RunnerError("environment", "%s is not valid JSON (%s). Fix it, or remove it and run setup again."
                          % (path, e))
    problem = _config_problem(raw)
    if problem:
        raise RunnerError("environment", "%s: %s. Fix it, or remove it and run setup again." % (path, problem))
    config = {
        "mode": raw["mode"],
        "environment": raw["environment"],
        "environments_dir": raw.get("environments_dir") or os.path.join(home, "environments"),
        "state_dir": raw.get("state_dir") or os.path.join(home, "state"),
        "solution_dir": raw["solution_dir"],
        "scoring_user": raw.get("scoring_user"),
    }
    return config


def _config_problem(raw):
    if not isinstance(raw, dict):
        return "expected a JSON object"
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        return "unknown field %s" % ", ".join(repr(k) for k in sorted(unknown))
    if raw.get("mode") not in ("protected", "unprotected"):
        return "mode must be \"protected\" or \"unprotected\""
    if not isinstance(raw.get("environment"), str):
        return "environment must name the environment id"
    for key in ("environments_dir", "state_dir", "solution_dir"):
        value = raw.get(key)
        if value is None and key != "solution_dir":
            continue
        if not isinstance(value, str) or not os.path.isabs(value):
            return "%s must be an absolute path" % key
    user = raw.get("scoring_user")
    if user is not None and not (isinstance(user, str) and user):
        return "scoring_user must be null or a user name"
    if user is not None and raw.get("mode") != "protected":
        return "scoring_user is only used in protected mode"
    return None


class Context(object):
    """What every command needs: the home, its configuration and the environment, loaded on demand."""

    def __init__(self, home, as_json):
        self.home = home
        self.as_json = as_json
        self._config = None
        self._environment = None

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.home)
        return self._config

    @property
    def environment(self):
        if self._environment is None:
            c = self.config
            self._environment = load_environment(c["environments_dir"], c["environment"])
        return self._environment

    @property
    def manifest(self):
        return self.environment["manifest"]

    @property
    def state_dir(self):
        return self.config["state_dir"]

    def state_path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    def ensure_state_dir(self):
        make_dirs(self.state_dir, 0o755)
        make_dirs(self.state_path("jobs"), 0o755)

    def job_dir(self, job_id):
        return self.state_path("jobs", job_id)

    def session_lock(self):
        self.ensure_state_dir()
        return FileLock(self.state_path("session.lock"))

    def record_event(self, event, **fields):
        record = {"time": iso(now_s()), "event": event}
        record.update(fields)
        self.ensure_state_dir()
        append_line_synced(self.state_path("events.jsonl"), json.dumps(record, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# Session state and the clock


def load_session(ctx):
    path = ctx.state_path("session.json")
    try:
        session = read_json(path)
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as e:
        raise RunnerError("integrity", "%s is damaged (%s). The session's times cannot be read; contact the "
                                       "organiser." % (path, e))
    problem = _session_problem(session)
    if problem:
        raise RunnerError("integrity", "%s is damaged: %s. Contact the organiser." % (path, problem))
    if session["environment"] != ctx.config["environment"]:
        raise RunnerError("environment", "The session in %s was started for environment %r, but runner.json "
                                         "names %r. Put runner.json back, or use a new runner home for "
                                         "another session." % (ctx.state_dir, session["environment"],
                                                               ctx.config["environment"]))
    return session


def _session_problem(s):
    if not isinstance(s, dict):
        return "expected a JSON object"
    if parse_iso(s.get("started_at")) is None:
        return "started_at is not an ISO 8601 time"
    if not _is_int(s.get("time_limit_s")) or s["time_limit_s"] <= 0:
        return "time_limit_s is not a positive whole number"
    if not isinstance(s.get("environment"), str):
        return "environment is missing"
    if s.get("ended_at") is not None and parse_iso(s["ended_at"]) is None:
        return "ended_at is not an ISO 8601 time"
    pauses = s.get("pauses")
    if not isinstance(pauses, list):
        return "pauses is not a list"
    for p in pauses:
        if not isinstance(p, dict) or parse_iso(p.get("start")) is None:
            return "a pause has no valid start"
        if p.get("end") is not None and parse_iso(p["end"]) is None:
            return "a pause has an invalid end"
    return None


def save_session(ctx, session):
    write_json_atomic(ctx.state_path("session.json"), session)


class Clock(object):
    """The session's times at one moment `now`, from session.json (None before the start).

    Elapsed time excludes pauses; the deadline moves by the length of every pause. A session whose
    deadline has passed is "ended" at its deadline without anything being written.
    """

    def __init__(self, session, now):
        self.now = now
        self.session = session
        if session is None:
            self.started = None
            return
        self.started = parse_iso(session["started_at"])
        self.limit = float(session["time_limit_s"])
        self.pauses = [(parse_iso(p["start"]), parse_iso(p["end"]) if p.get("end") else None)
                       for p in session["pauses"]]
        self.ended_explicitly = parse_iso(session["ended_at"]) if session.get("ended_at") else None

    def paused_until(self, t):
        total = 0.0
        for start, end in self.pauses:
            if start >= t:
                continue
            total += min(end if end is not None else t, t) - start
        return total

    @property
    def is_paused(self):
        return self.started is not None and self.ended_explicitly is None and any(
            end is None for _, end in self.pauses)

    @property
    def deadline(self):
        if self.started is None:
            return None
        reference = self.ended_explicitly if self.ended_explicitly is not None else self.now
        return self.started + self.limit + self.paused_until(max(reference, self.started))

    @property
    def ended_at(self):
        if self.started is None:
            return None
        if self.ended_explicitly is not None:
            return self.ended_explicitly
        if not self.is_paused and self.now >= self.deadline:
            return self.deadline
        return None

    @property
    def state(self):
        if self.started is None:
            return "not_started"
        if self.ended_at is not None:
            return "ended"
        if self.is_paused:
            return "paused"
        return "running"

    def elapsed(self):
        if self.started is None:
            return 0.0
        reference = self.ended_at if self.ended_at is not None else self.now
        reference = max(reference, self.started)  # a clock set back before the start gives 0, not < 0
        return min(self.limit, max(0.0, reference - self.started - self.paused_until(reference)))

    def paused_total(self):
        if self.started is None:
            return 0.0
        reference = self.ended_at if self.ended_at is not None else self.now
        return self.paused_until(max(reference, self.started))

    def seconds_left(self):
        if self.started is None:
            return None
        if self.state == "ended":
            return 0.0
        return max(0.0, self.limit - self.elapsed())


def genesis_hash(session):
    return sha256((GENESIS_PREFIX + session["started_at"]).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# The score log: one JSON entry per line, chained by hashes


ENTRY_FIELDS = {
    "index": "int",
    "job_id": "str",
    "kind": "kind",
    "started_at": "time",
    "ended_at": "time",
    "elapsed_s": "nonneg",
    "score": "score",
    "message": "str0",
    "exit_code": "int_or_null",
    "signal": "str_or_null",
    "timed_out": "bool",
    "killed": "bool",
    "duration_s": "nonneg",
    "solution_hash": "str",
    "counts": "bool",
    "output_bytes": "int",
    "output_truncated": "bool",
    "prev_hash": "hash",
    "hash": "hash",
}


def _field_ok(kind, v):
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if kind == "str":
        return isinstance(v, str) and len(v) > 0
    if kind == "str0":
        return isinstance(v, str)
    if kind == "kind":
        return v in ("score", "final")
    if kind == "time":
        return isinstance(v, str) and parse_iso(v) is not None
    if kind == "nonneg":
        return _is_number(v) and v >= 0
    if kind == "score":
        return v is None or _is_number(v)
    if kind == "int_or_null":
        return v is None or (isinstance(v, int) and not isinstance(v, bool))
    if kind == "str_or_null":
        return v is None or isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "hash":
        return isinstance(v, str) and HASH_RE.match(v) is not None
    raise AssertionError(kind)


def entry_problem(obj):
    """Why obj is not a well-formed score log entry, or None."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key, kind in ENTRY_FIELDS.items():
        if key not in obj:
            return "field %r is missing" % key
        if not _field_ok(kind, obj[key]):
            return "field %r has an invalid value %s" % (key, _describe(obj[key]))
    extra = sorted(k for k in obj if k not in ENTRY_FIELDS)
    if extra:
        return "unexpected field %r" % extra[0]
    return None


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry):
    body = dict((k, v) for k, v in entry.items() if k != "hash")
    return sha256(canonical_json(body).encode("utf-8")).hexdigest()


def parse_line(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


class LogScan(object):
    """Every line of the score log, checked in order.

    A line is one "\\n"-terminated record; an unterminated last line is "torn" (left by a crash in
    the middle of a write) and is not an entry. `entries` are the well-formed entries (what `log`
    shows); the first problem found is kept in first_bad/reason; `last_hash` is the hash the next
    entry links to; `next_index` is the next line number.
    """

    def __init__(self, data, genesis):
        self.entries = []
        self.first_bad = None
        self.reason = None
        self.torn = None
        self.torn_entry = None  # the torn line, when it is a complete and correctly linked entry
        self.job_ids = {}
        segments = data.split(b"\n")
        tail = segments.pop()  # b"" when the log ends with a newline
        self.last_hash = genesis
        for number, raw in enumerate(segments):
            self._check(number, raw, genesis)
        self.next_index = len(segments)
        if tail:
            self.torn = tail
            self.mark_bad(len(segments), "line %d: the last line is incomplete (the runner was interrupted while "
                                     "writing it); it is not an entry" % len(segments))
            obj = parse_line(tail)
            if (entry_problem(obj) is None and obj["hash"] == entry_hash(obj)
                    and obj["index"] == len(segments) and obj["prev_hash"] == self.last_hash
                    and obj["job_id"] not in self.job_ids):
                self.torn_entry = obj

    def mark_bad(self, number, reason):
        if self.first_bad is None:
            self.first_bad = number
            self.reason = reason

    def _check(self, number, raw, genesis):
        if not raw.strip():
            self.mark_bad(number, "line %d: empty line (edited?)" % number)
            return
        obj = parse_line(raw)
        if obj is None:
            self.mark_bad(number, "line %d: not valid JSON (edited or damaged?)" % number)
            return
        problem = entry_problem(obj)
        if problem:
            self.mark_bad(number, "line %d: %s (edited?)" % (number, problem))
            if isinstance(obj, dict) and isinstance(obj.get("hash"), str):
                self.last_hash = obj["hash"]
            return
        if obj["hash"] != entry_hash(obj):
            self.mark_bad(number, "line %d: hash does not match its contents (edited?)" % number)
        elif obj["index"] != number:
            self.mark_bad(number, "line %d: index %d where %d was expected (deleted, inserted or reordered?)"
                      % (number, obj["index"], number))
        elif obj["prev_hash"] != self.last_hash:
            if number == 0 and self.last_hash == genesis:
                why = "does not match the session's start time (was the start time changed?)"
            else:
                why = "does not match the hash of the entry before it (deleted, inserted or reordered?)"
            self.mark_bad(number, "line %d: prev_hash %s" % (number, why))
        elif obj["job_id"] in self.job_ids:
            self.mark_bad(number, "line %d: job %s already has an entry on line %d (duplicated?)"
                      % (number, obj["job_id"], self.job_ids[obj["job_id"]]))
        self.job_ids.setdefault(obj["job_id"], number)
        self.entries.append(obj)
        self.last_hash = obj["hash"]

    @property
    def intact(self):
        return self.first_bad is None

    def find_job(self, job_id):
        for e in self.entries:
            if e["job_id"] == job_id:
                return e
        return None


def read_log_bytes(ctx):
    try:
        with open(ctx.state_path("score.log.jsonl"), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def scan_log(ctx, session):
    data = read_log_bytes(ctx)
    if session is None:
        scan = LogScan(b"", "0" * 64)
        if data:
            scan.mark_bad(0, "line 0: the score log has lines but the session has not started (copied in?)")
        return scan
    return LogScan(data, genesis_hash(session))


def append_entry(ctx, session, fields):
    """Appends the entry for fields["job_id"] unless the log already has one; returns the stored entry.

    The log is flocked for the whole read-check-write so that two writers cannot compute the same
    index. A torn last line is first ended with a newline: if it is a complete entry it becomes a
    normal entry again, otherwise it stays in the log as evidence (verify reports it).
    """
    path = ctx.state_path("score.log.jsonl")
    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        scan = LogScan(b"".join(chunks), genesis_hash(session))
        prefix = b""
        last_hash = scan.last_hash
        next_index = scan.next_index
        if scan.torn is not None:
            prefix = b"\n"
            next_index += 1
            if scan.torn_entry is not None:
                last_hash = scan.torn_entry["hash"]
                if scan.torn_entry["job_id"] == fields["job_id"]:
                    write_all(fd, prefix)
                    os.fsync(fd)
                    return scan.torn_entry
        existing = scan.find_job(fields["job_id"])
        if existing is not None:
            if prefix:
                write_all(fd, prefix)
                os.fsync(fd)
            return existing
        entry = dict(fields)
        entry["index"] = next_index
        entry["prev_hash"] = last_hash
        entry["hash"] = entry_hash(entry)
        problem = entry_problem(entry)
        if problem:
            raise RunnerError("internal", "refusing to write a malformed score log entry: %s" % problem)
        write_all(fd, prefix + canonical_json(entry).encode("utf-8") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(os.path.dirname(path))
    return entry


# ---------------------------------------------------------------------------------------------
# Scoring jobs


def new_job_id(t):
    total_ms = int(round(t * 1000))
    secs, ms = divmod(total_ms, 1000)
    return "j%s%03dZ-%s" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs)), ms, os.urandom(3).hex())


def job_summary(job):
    return {"job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "pid": job.get("pid")}


def read_job(ctx, job_id):
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        return None
    try:
        job = read_json(os.path.join(ctx.job_dir(job_id), "job.json"))
    except (FileNotFoundError, ValueError):
        return None
    return job if isinstance(job, dict) and job.get("job_id") == job_id else None


def running_job(ctx):
    """The job named by the pointer file, when its entry is not written yet (call when the lock is taken)."""
    pointer = read_json_if_exists(ctx.state_path("current_job.json"))
    if not isinstance(pointer, dict):
        return None
    job = read_job(ctx, pointer.get("job_id"))
    if job is None or os.path.exists(os.path.join(ctx.job_dir(job["job_id"]), "entry.json")):
        return None
    return job


def create_job(ctx, kind, clock):
    """Writes the job's folder and job.json; the time it records is the job's start for every rule."""
    started = clock.now
    job_id = new_job_id(started)
    jdir = ctx.job_dir(job_id)
    os.makedirs(jdir, mode=0o755)
    open(os.path.join(jdir, "output.log"), "ab").close()
    job = {
        "job_id": job_id,
        "kind": kind,
        "started_at": iso(started),
        "elapsed_s": round3(clock.elapsed()),
        # The documented rule: a job started before the deadline counts, even when it ends after it.
        "counts": started < clock.deadline,
        "pid": None,
    }
    write_json_atomic(os.path.join(jdir, "job.json"), job)
    write_json_atomic(ctx.state_path("current_job.json"), {"job_id": job_id})
    return job


def spawn_job(ctx, job, lock_fd):
    """Starts the detached job process; it inherits the score lock and holds it until the entry is written.

    The job is a fork of this runner, not a new interpreter: it starts at once instead of paying Python's
    start-up again, which the participant would wait for on every Score now. It runs in a session of its
    own, so it survives the SSH channel and the caller's terminal. It holds the write end of a pipe whose
    read end stays here, so that a follower in this process learns the moment the job has ended.
    """
    jdir = ctx.job_dir(job["job_id"])
    log_fd = os.open(os.path.join(jdir, "runner.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        done_r, done_w = os.pipe()
    except OSError:
        os.close(log_fd)
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        for fd in (log_fd, done_r, done_w):
            os.close(fd)
        raise
    if pid == 0:
        _job_process(ctx, job["job_id"], lock_fd, log_fd, done_w)  # never returns
    os.close(log_fd)
    os.close(done_w)
    _job_done_pipes[job["job_id"]] = done_r
    job["pid"] = pid
    write_json_atomic(os.path.join(jdir, "job.json"), job)
    return job


# Read ends of the pipes of jobs this process started (job_id -> fd): end of file means the job has ended.
_job_done_pipes = {}


class _JobArgs(object):
    def __init__(self, job_id, lock_fd):
        self.job_id = job_id
        self.lock_fd = lock_fd


def _close_fds_except(keep):
    """Closes every file descriptor from 3 up but those in keep."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 4096)
    for fd in fds:
        if fd >= 3 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _job_process(ctx, job_id, lock_fd, log_fd, done_fd):
    """The forked job process: runs the job as `_run-job` would, with its output in runner.log, then exits."""
    code = EXIT_CODES["internal"]
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log_fd, 2)
        # Nothing else of the caller's may stay open: the session lock would stay taken, and the SSH
        # channel would stay open until the job ends.
        _close_fds_except((lock_fd, done_fd))
        os.chdir(ctx.state_dir)
        code = cmd_run_job(ctx, _JobArgs(job_id, lock_fd)) or 0
    except RunnerError as e:
        code = report_error(e, False)
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def start_job(ctx, kind, clock, lock_fd):
    """Creates and spawns a job while the caller holds the session lock and the score lock."""
    job = create_job(ctx, kind, clock)
    try:
        spawn_job(ctx, job, lock_fd)
    except OSError as e:
        session = load_session(ctx)
        fields = failed_fields(job, "The scoring job could not be started: %s. No score." % e, killed=False)
        finish_job(ctx, session, job, fields)
        raise RunnerError("internal", "The scoring job could not be started: %s" % e)
    ctx.record_event("job_started", job_id=job["job_id"], kind=kind, counts=job["counts"])
    return job


def failed_fields(job, message, killed):
    t = now_s()
    started = parse_iso(job["started_at"])
    return {
        "job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "ended_at": iso(t),
        "elapsed_s": job["elapsed_s"], "score": None, "message": message, "exit_code": None, "signal": None,
        "timed_out": False, "killed": killed, "duration_s": round3(max(0.0, t - started)),
        "solution_hash": job.get("solution_hash") or "unknown", "counts": job["counts"],
        "output_bytes": 0, "output_truncated": False,
    }


def finish_job(ctx, session, job, fields):
    """Records the outcome, then the log entry, then entry.json: each step can be redone after a crash."""
    jdir = ctx.job_dir(job["job_id"])
    outcome_path = os.path.join(jdir, "outcome.json")
    if not os.path.exists(outcome_path):
        write_json_atomic(outcome_path, fields)
    entry = append_entry(ctx, session, fields)
    write_json_atomic(os.path.join(jdir, "entry.json"), entry)
    ctx.record_event("job_finished", job_id=job["job_id"], index=entry["index"], score=entry["score"])
    return entry


def recover_stale_jobs(ctx, session):
    """Gives every job whose process died without an entry its entry (call holding the score lock).

    A job's outcome is saved before its entry, so a job killed between the two still gets its real
    score; a job killed earlier gets a "no score" entry that says so. No job vanishes silently.
    """
    jobs_dir = ctx.state_path("jobs")
    try:
        names = sorted(os.listdir(jobs_dir))
    except FileNotFoundError:
        return
    for job_id in names:
        jdir = os.path.join(jobs_dir, job_id)
        if os.path.exists(os.path.join(jdir, "entry.json")):
            continue
        job = read_job(ctx, job_id)
        if job is None:
            continue
        if session is None:
            continue
        kill_leftover_scorer(jdir)
        outcome = read_json_if_exists(os.path.join(jdir, "outcome.json"))
        if not isinstance(outcome, dict) or outcome.get("job_id") != job_id:
            outcome = failed_fields(
                job, "The scoring job stopped before it finished (its process was killed or the machine "
                     "restarted). No score was recorded for this run; score again.", killed=True)
            outcome["output_bytes"] = _file_size(os.path.join(jdir, "output.log"))
        finish_job(ctx, session, job, outcome)
        ctx.record_event("job_recovered", job_id=job_id)


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def kill_leftover_scorer(jdir):
    """Kills the process group of a scorer whose job process died, if it is still running this boot."""
    info = read_json_if_exists(os.path.join(jdir, "scorer.json"))
    if not isinstance(info, dict) or not isinstance(info.get("pgid"), int) or info["pgid"] <= 1:
        return
    if info.get("boot_id") is None or info.get("boot_id") != boot_id():
        return  # after a restart the number may belong to someone else
    try:
        os.killpg(info["pgid"], signal.SIGKILL)
    except OSError:
        pass


def probe_and_recover(ctx):
    """Under the session lock: if no job holds the score lock, finish any job that died without an entry.

    Returns the running job (or None). Holding the session lock means no `score` can be between
    taking the score lock and writing its pointer, so a busy lock always names a real job.
    """
    with ctx.session_lock():
        fd = try_lock(ctx.state_path("score.lock"))
        if fd is None:
            return running_job(ctx)
        try:
            recover_stale_jobs(ctx, load_session(ctx))
        finally:
            os.close(fd)
        return None


def hash_solution(root):
    """sha256 over the solution folder: sorted relative paths with file bytes or link text.

    .git and __pycache__ folders are skipped (they change without the solution changing).
    """
    h = sha256()
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__")]
        # os.walk lists a link to a folder among the folders without entering it: hash it as a link.
        linked_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + linked_dirs:
            items.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    for rel in sorted(items):
        full = os.path.join(root, rel)
        name = rel.encode("utf-8", "surrogateescape")
        if os.path.islink(full):
            h.update(b"link\0" + name + b"\0" + os.readlink(full).encode("utf-8", "surrogateescape") + b"\0")
            continue
        try:
            size = os.path.getsize(full)
            h.update(b"file\0" + name + b"\0" + str(size).encode() + b"\0")
            with open(full, "rb") as f:
                while True:
                    block = f.read(1 << 20)
                    if not block:
                        break
                    h.update(block)
        except OSError:
            h.update(b"unreadable\0" + name + b"\0")
    return "sha256:" + h.hexdigest()


class OutputSink(object):
    """Copies scorer output to output.log up to a limit, and counts what it does not keep."""

    def __init__(self, path, limit):
        self.file = open(path, "ab")
        self.limit = limit
        self.kept = 0
        self.total = 0
        self.last_byte = b"\n"

    def write(self, data):
        self.total += len(data)
        room = self.limit - self.kept
        if room > 0:
            part = data[:room]
            self.file.write(part)
            self.file.flush()  # readers (attach) see it at once
            self.kept += len(part)
            self.last_byte = part[-1:]

    @property
    def truncated(self):
        return self.total > self.kept

    def close(self):
        if self.truncated:
            lead = b"" if self.last_byte == b"\n" else b"\n"
            note = "[output truncated after %d bytes; the scorer wrote %d bytes in all]\n" % (self.kept, self.total)
            self.file.write(lead + note.encode("utf-8"))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


class StopRequest(Exception):
    pass


def _on_stop_signal(signum, frame):
    raise StopRequest(signal.Signals(signum).name)


def scorer_environment(ctx, job_id, result_file):
    env = dict(os.environ)
    env["REBENCH_SOLUTION_DIR"] = ctx.config["solution_dir"]
    env["REBENCH_RESULT_FILE"] = result_file
    env["REBENCH_JOB_ID"] = job_id
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach the participant as they are printed
    return env


def privilege_drop(ctx, result_dir):
    """In protected mode with scoring_user, returns a preexec function that runs the scorer as that user."""
    user = ctx.config.get("scoring_user")
    if not user:
        return None
    import pwd  # POSIX only, and only needed here

    if os.geteuid() != 0:
        raise RunnerError("environment", "runner.json names scoring_user %r, but the runner is not running "
                                         "as root and cannot switch to that user." % user)
    try:
        record = pwd.getpwnam(user)
    except KeyError:
        raise RunnerError("environment", "runner.json names scoring_user %r, but there is no such user." % user)
    os.chown(result_dir, record.pw_uid, record.pw_gid)

    def drop():
        os.setgroups([])
        os.setgid(record.pw_gid)
        os.setuid(record.pw_uid)

    return drop, record


def run_scorer(ctx, job, sink, result_file):
    """Runs the scoring command in its own process group; returns (exit_code, signal, timed_out, stopped_by)."""
    env_dir = ctx.environment["dir"]
    scoring = ctx.manifest["scoring"]
    argv = [a.replace("{python}", sys.executable) for a in scoring["command"]]
    env = scorer_environment(ctx, job["job_id"], result_file)
    dropped = privilege_drop(ctx, os.path.dirname(result_file))
    preexec = None
    if dropped:
        preexec, record = dropped
        env["HOME"] = record.pw_dir
        env["USER"] = env["LOGNAME"] = record.pw_name
    proc = subprocess.Popen(
        argv, cwd=env_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, preexec_fn=preexec,
    )
    write_json_atomic(os.path.join(ctx.job_dir(job["job_id"]), "scorer.json"),
                      {"pgid": proc.pid, "boot_id": boot_id()})
    return supervise(proc, sink, scoring["timeout_s"])


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def supervise(proc, sink, timeout_s):
    """Copies output while the scorer runs, enforcing the timeout on its whole process group."""
    pgid = proc.pid
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    started = time.monotonic()
    term_sent = None
    exited_at = None
    eof = False
    timed_out = False
    stopped_by = None
    while True:
        try:
            t = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = t
                # Whatever the scorer left running in its group would compete with the next run.
                kill_group(pgid, signal.SIGKILL)
            if exited_at is not None and (eof or t - exited_at > DRAIN_AFTER_EXIT_S):
                break
            if exited_at is None and term_sent is None and t - started >= timeout_s:
                timed_out = True
                term_sent = t
                kill_group(pgid, signal.SIGTERM)
            if exited_at is None and term_sent is not None and t - term_sent >= TERM_GRACE_S:
                kill_group(pgid, signal.SIGKILL)
            if eof:
                # Output is closed; the exit usually follows at once, and waiting on it (instead of
                # sleeping a whole poll) lets the entry be written as soon as the scorer is done.
                try:
                    proc.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    pass
                continue
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    sink.write(data)
                else:
                    eof = True
        except StopRequest as e:
            # The job process itself is being stopped: take the scorer down with it.
            stopped_by = str(e)
            kill_group(pgid, signal.SIGKILL)
            proc.wait()
            break
    proc.stdout.close()
    code = proc.returncode
    if code is None:
        proc.wait()
        code = proc.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return None, name, timed_out, stopped_by
    return code, None, timed_out, stopped_by


def read_result(path):
    """(score or None, scorer's message, why there is no score or None) from the result file."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read(RESULT_LIMIT + 1)
    except FileNotFoundError:
        return None, "", "the scorer did not write a result file (REBENCH_RESULT_FILE)"
    except OSError as e:
        return None, "", "the result file could not be read (%s)" % e
    if len(text) > RESULT_LIMIT:
        return None, "", "the result file is larger than %d characters" % RESULT_LIMIT
    try:
        data = json.loads(text)  # accepts NaN and Infinity, which both mean "no score"
    except ValueError as e:
        return None, "", "the result file is not valid JSON (%s)" % e
    except RecursionError:
        return None, "", "the result file is not valid JSON (nested too deeply)"
    if not isinstance(data, dict):
        return None, "", "the result file does not hold a JSON object"
    message = data.get("message", "")
    if message is None:
        message = ""
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    if "score" not in data:
        return None, message, "the result has no \"score\""
    raw = data["score"]
    if raw is None:
        return None, message, None  # the scorer said "no score" itself; its message explains why
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None, message, "the reported score %s is not a number" % _describe(raw)
    try:
        score = float(raw)
    except OverflowError:
        return None, message, "the reported score is too large"
    if not math.isfinite(score):
        return None, message, "the reported score %s is not a finite number" % score
    return score, message, None


def compose_message(scorer_message, reason):
    scorer_message = scorer_message.strip()
    if reason is None:
        return scorer_message
    reason = "No score: " + reason + "."
    return scorer_message + " | " + reason if scorer_message else reason


def execute_job(ctx, job):
    """Runs one scoring job from start to finished fields (everything but index and hashes)."""
    jdir = ctx.job_dir(job["job_id"])
    started = parse_iso(job["started_at"])
    result_dir = os.path.join(jdir, "result")
    make_dirs(result_dir, 0o700)
    result_file = os.path.join(result_dir, "result.json")
    sink = OutputSink(os.path.join(jdir, "output.log"), ctx.manifest["scoring"]["output_limit_bytes"])
    solution_hash = "unknown"
    try:
        solution_hash = hash_solution(ctx.config["solution_dir"])
        job["solution_hash"] = solution_hash
        try:
            exit_code, sig, timed_out, stopped_by = run_scorer(ctx, job, sink, result_file)
        except OSError as e:
            exit_code, sig, timed_out, stopped_by = None, None, False, None
            start_error = "the scoring command %s could not be started (%s); check scoring.command in %s" % (
                json.dumps(ctx.manifest["scoring"]["command"]), e, ctx.environment["manifest_path"])
        else:
            start_error = None
    finally:
        sink.close()
    score, scorer_message, reason = None, "", None
    if start_error:
        reason = start_error
    elif stopped_by:
        reason = "the scoring job was stopped by %s before the scorer finished" % stopped_by
    elif timed_out:
        reason = "the scorer did not finish within its time limit of %d s and was stopped" % (
            ctx.manifest["scoring"]["timeout_s"])
        _, scorer_message, _ = read_result(result_file)
    elif sig:
        reason = "the scorer was killed by %s%s" % (sig, " (out of memory?)" if sig == "SIGKILL" else "")
        _, scorer_message, _ = read_result(result_file)
    else:
        score, scorer_message, reason = read_result(result_file)
        if exit_code != 0:
            score = None
            reason = "the scorer exited with code %d%s" % (exit_code, "; " + reason if reason else "")
    ended = now_s()
    return {
        "job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "ended_at": iso(ended),
        "elapsed_s": job["elapsed_s"], "score": score,
        "message": clean_text(compose_message(scorer_message, reason), MESSAGE_LIMIT),
        "exit_code": exit_code, "signal": sig, "timed_out": timed_out,
        "killed": bool(sig) or timed_out or bool(stopped_by),
        "duration_s": round3(max(0.0, ended - started)), "solution_hash": solution_hash,
        "counts": job["counts"], "output_bytes": sink.total, "output_truncated": sink.truncated,
    }


def holds_lock(fd, lock_path):
    """Whether fd is lock_path's open file and holds its lock (flock again on the same open file succeeds).

    The file's identity is checked too: flock on any file the caller opened would succeed.
    """
    try:
        held, expected = os.fstat(fd), os.stat(lock_path)
    except OSError:
        return False
    if (held.st_dev, held.st_ino) != (expected.st_dev, expected.st_ino):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def cmd_run_job(ctx, args):
    """The detached job process: runs the scorer and writes the entry while holding the score lock."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_stop_signal)
    job = read_job(ctx, args.job_id)
    if job is None:
        raise RunnerError("usage", "No scoring job %s in %s." % (args.job_id, ctx.state_dir))
    if os.path.exists(os.path.join(ctx.job_dir(job["job_id"]), "entry.json")):
        return None
    if args.lock_fd is None or not holds_lock(args.lock_fd, ctx.state_path("score.lock")):
        raise RunnerError("usage", "_run-job is internal: it runs only as the job process started by `score`.")
    session = load_session(ctx)
    try:
        fields = execute_job(ctx, job)
    except (Exception, StopRequest) as e:
        traceback.print_exc()
        kill_leftover_scorer(ctx.job_dir(job["job_id"]))
        message = "The runner failed while running this scoring job (%s). No score; see %s." % (
            clean_text(e), os.path.join(ctx.job_dir(job["job_id"]), "runner.log"))
        if isinstance(e, RunnerError):
            message = "No score: " + e.message
        fields = failed_fields(job, message, killed=isinstance(e, StopRequest))
    # From here on, the entry must be written even if someone signals us.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    finish_job(ctx, session, job, fields)
    if args.lock_fd is not None:
        os.close(args.lock_fd)
    return None


# ---------------------------------------------------------------------------------------------
# Following a job's output


class JsonEvents(object):
    """Prints stream events, one JSON object a line, flushed at once."""

    def __init__(self, as_json):
        self.as_json = as_json

    def job(self, job, offset):
        if self.as_json:
            emit_json({"type": "job", "job_id": job["job_id"], "started_at": job["started_at"],
                       "output_offset": offset})
        else:
            print_line("Scoring job %s (started %s):" % (job["job_id"], job["started_at"]))

    def output(self, text, offset):
        if self.as_json:
            emit_json({"type": "output", "text": text, "offset": offset})
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def entry(self, entry):
        if self.as_json:
            emit_json({"type": "entry", "entry": entry})
        else:
            print_line("")
            print_line(describe_entry(entry))

    def error(self, err):
        if self.as_json:
            emit_json({"type": "error", "error": error_object(err)})
        else:
            sys.stderr.write(err.message + "\n")


def follow_job(ctx, job, offset, events):
    """Streams output.log from offset until the entry exists, then the entry.

    Only whole UTF-8 characters are sent; each output event's offset is the byte offset just after
    the bytes it decoded, so `attach --offset` resumes exactly where a client stopped reading.
    """
    jdir = ctx.job_dir(job["job_id"])
    log_path = os.path.join(jdir, "output.log")
    entry_path = os.path.join(jdir, "entry.json")
    events.job(job, offset)
    try:
        stream_until_entry(ctx, log_path, entry_path, offset, events, _job_done_pipes.pop(job["job_id"], None))
    except RunnerError as e:
        # Once the stream has begun, a failure is a stream event, so that line readers can parse it.
        events.error(e)
        return EXIT_CODES[e.code]
    except BrokenPipeError:
        raise  # the reader has gone; the job itself goes on
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        events.error(RunnerError("internal", "Following the job failed: %s: %s" % (type(e).__name__, e)))
        return EXIT_CODES["internal"]
    return 0


def stream_until_entry(ctx, log_path, entry_path, offset, events, done_fd=None):
    """done_fd: the read end of the job's pipe when this process started the job (see spawn_job)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    position = offset
    last_probe = time.monotonic()
    while True:
        done = os.path.exists(entry_path)  # checked before reading: once it exists, output is complete
        chunk = read_from(log_path, position, 65536)
        if chunk:
            position += len(chunk)
            text = decoder.decode(chunk)
            pending = len(decoder.getstate()[0])
            if text:
                events.output(text, position - pending)
            continue
        if done:
            tail = decoder.decode(b"", final=True)
            if tail:
                events.output(tail, position)
            events.entry(read_json(entry_path))
            return
        if time.monotonic() - last_probe >= 1.0:
            last_probe = time.monotonic()
            probe_and_recover(ctx)  # a job that died gets its "no score" entry, which ends this loop
            continue
        if done_fd is None:
            time.sleep(POLL_S)
            continue
        # Waits for new output as before, but wakes the moment the job process ends (its pipe closes).
        ready, _, _ = select.select([done_fd], [], [], POLL_S)
        if ready:
            os.close(done_fd)
            done_fd = None


def read_from(path, position, size):
    try:
        with open(path, "rb") as f:
            f.seek(position)
            return f.read(size)
    except FileNotFoundError:
        return b""


# ---------------------------------------------------------------------------------------------
# Output


def emit_json(obj):
    # ASCII-only JSON: safe whatever the remote locale is, and still exact.
    sys.stdout.write(json.dumps(obj, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def print_line(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error_object(err):
    obj = {"code": err.code, "message": err.message}
    if err.job is not None:
        obj["job"] = err.job
    return obj


def format_duration(seconds):
    seconds = int(max(0, seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds % 3600 // 60, seconds % 60)


def format_score(score):
    return "no score" if score is None else "%.6g" % score


def describe_entry(entry):
    text = "Entry %d: %s" % (entry["index"], format_score(entry["score"]))
    if not entry["counts"]:
        text += " (does not count: started after the deadline)"
    if entry["message"]:
        text += " - " + entry["message"]
    return text


# ---------------------------------------------------------------------------------------------
# Status


def environment_summary(manifest, session):
    s = manifest["scoring"]
    return {
        "id": manifest["id"], "title": manifest["title"], "version": manifest["version"],
        "direction": s["direction"], "aggregation": s["aggregation"],
        "starting_score": s["starting_score"], "reference_score": s["reference_score"],
        "time_limit_s": session["time_limit_s"] if session else manifest["time_limit_s"],
        "pauses_allowed": manifest["pauses_allowed"],
        "instructions_before_start": manifest["instructions_before_start"],
        "gpus": manifest["hardware"]["gpus"], "gpu_model": manifest["hardware"]["gpu_model"],
        "min_free_disk_gb": manifest["hardware"]["min_free_disk_gb"], "scoring_timeout_s": s["timeout_s"],
    }


def counted_entry(entries, scoring):
    """The entry that counts: the best (by direction) or the last, among counting entries with a score."""
    candidates = [e for e in entries if e["counts"] and e["score"] is not None]
    if not candidates:
        return None
    if scoring["aggregation"] == "last":
        chosen = candidates[-1]
    else:
        chosen = candidates[0]
        for e in candidates[1:]:
            better = e["score"] < chosen["score"] if scoring["direction"] == "lower" else e["score"] > chosen["score"]
            if better:
                chosen = e
    ys, yr = scoring["starting_score"], scoring["reference_score"]
    return {"index": chosen["index"], "score": chosen["score"], "normalized": (chosen["score"] - ys) / (yr - ys)}


def build_status(ctx):
    manifest = ctx.manifest
    job = probe_and_recover(ctx)
    session = load_session(ctx)
    clock = Clock(session, now_s())
    scan = scan_log(ctx, session)
    ended = clock.ended_at
    return {
        "runner_version": RUNNER_VERSION,
        "mode": ctx.config["mode"],
        "environment": environment_summary(manifest, session),
        "state": clock.state,
        "started_at": session["started_at"] if session else None,
        "deadline": iso(clock.deadline) if session else None,
        "ended_at": iso(ended) if ended is not None else None,
        "now": iso(clock.now),
        "seconds_left": round3(clock.seconds_left()) if session else None,
        "elapsed_s": round3(clock.elapsed()),
        "paused_s": round3(clock.paused_total()),
        "job": job_summary(job) if job else None,
        "entries": len(scan.entries),
        "counted": counted_entry(scan.entries, manifest["scoring"]),
        "log_intact": scan.intact,
        "solution_dir": ctx.config["solution_dir"],
    }


def print_status(ctx, status):
    if ctx.as_json:
        emit_json(status)
        return
    env = status["environment"]
    lines = ["Environment: %s (%s %s)" % (env["title"], env["id"], env["version"])]
    state = status["state"]
    if state == "not_started":
        lines.append("Session: not started (time limit %s)" % format_duration(env["time_limit_s"]))
    elif state == "ended":
        lines.append("Session: ended at %s" % status["ended_at"])
    else:
        lines.append("Session: %s, %s left (deadline %s)" % (state, format_duration(status["seconds_left"]),
                                                            status["deadline"]))
    if status["job"]:
        lines.append("Scoring job running: %s (since %s)" % (status["job"]["job_id"], status["job"]["started_at"]))
    counted = status["counted"]
    direction = "lower is better" if env["direction"] == "lower" else "higher is better"
    if counted:
        lines.append("Score that counts: %s (normalised %.3f, entry %d; %s)"
                     % (format_score(counted["score"]), counted["normalized"], counted["index"], direction))
    else:
        lines.append("Score that counts: none yet (%s)" % direction)
    lines.append("Score log: %d entries, %s" % (status["entries"], "intact" if status["log_intact"]
                                                else "NOT intact (run: runner.py verify)"))
    lines.append("Solution folder: %s" % status["solution_dir"])
    lines.append("Mode: %s" % status["mode"])
    print_line("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Commands


def refuse(ctx, action, message):
    ctx.record_event("refused", action=action, reason=message)
    raise RunnerError("refused", message)


def refuse_unless_running(ctx, clock, action):
    state = clock.state
    if state == "not_started":
        refuse(ctx, action, "The session has not started. Start it first (runner.py start).")
    if state == "paused":
        refuse(ctx, action, "The session is paused. Resume it first (runner.py resume).")
    if state == "ended":
        if clock.ended_explicitly is None:
            refuse(ctx, action, "The deadline passed at %s. A request after the deadline is refused and does "
                                "not count." % iso(clock.ended_at))
        refuse(ctx, action, "The session ended at %s. Nothing more can be scored." % iso(clock.ended_at))


def take_score_lock_or_busy(ctx, action):
    path = ctx.state_path("score.lock")
    fd = try_lock(path)
    if fd is None and running_job(ctx) is None:
        # The job holding the lock has written its entry and is about to let go of the lock (it records
        # an event first): wait for that instead of calling a finished job busy.
        until = time.monotonic() + FINISHING_JOB_WAIT_S
        while fd is None and time.monotonic() < until:
            time.sleep(0.01)
            fd = try_lock(path)
    if fd is None:
        job = running_job(ctx)
        what = ("scoring job %s (started %s)" % (job["job_id"], job["started_at"])) if job else "scoring job"
        ctx.record_event("refused", action=action, reason="busy", job_id=job["job_id"] if job else None)
        raise RunnerError("busy", "Another %s is running. Wait for it to finish (runner.py attach %s) and try "
                                  "again." % (what, job["job_id"] if job else "<job>"),
                          job_summary(job) if job else None)
    return fd


def cmd_setup(ctx, args):
    home = ctx.home
    config_path = os.path.join(home, "runner.json")
    existing = load_config(home) if os.path.exists(config_path) else None
    if existing and existing["mode"] == "protected":
        raise RunnerError("refused", "This runner home (%s) is in protected mode: the organiser set it up, and "
                                     "setup cannot change it." % home)
    environments_dir = os.path.abspath(os.path.expanduser(
        args.environments_dir or (existing and existing["environments_dir"]) or os.path.join(home, "environments")))
    env = load_environment(environments_dir, args.environment)
    state_dir = existing["state_dir"] if existing else os.path.join(home, "state")
    if args.solution_dir:
        solution_dir = os.path.abspath(os.path.expanduser(args.solution_dir))
    elif existing and existing["environment"] == args.environment:
        solution_dir = existing["solution_dir"]
    else:
        solution_dir = os.path.join(os.path.expanduser("~"), "rebench", args.environment)
    session = read_json_if_exists(os.path.join(state_dir, "session.json"))
    if session is not None:
        if session.get("environment") != args.environment:
            raise RunnerError("refused", "A session for %r has already started in %s; this runner home cannot "
                                         "switch to %r. Use another runner home (--home) for another session."
                              % (session.get("environment"), home, args.environment))
        if existing and solution_dir != existing["solution_dir"]:
            raise RunnerError("refused", "The session has started with the solution folder %s; it cannot move "
                                         "to %s now." % (existing["solution_dir"], solution_dir))
    config = {
        "mode": "unprotected", "environment": args.environment, "environments_dir": environments_dir,
        "state_dir": state_dir, "solution_dir": solution_dir, "scoring_user": None,
    }
    make_dirs(home, 0o755)
    if existing != config:
        write_json_atomic(config_path, config)
    ctx._config = config
    ctx._environment = env
    ctx.ensure_state_dir()
    copied = copy_starting_solution(env, solution_dir)
    if existing != config or copied:
        ctx.record_event("setup", environment=args.environment, solution_dir=solution_dir,
                         copied_starting_solution=copied)
    print_status(ctx, build_status(ctx))


def copy_starting_solution(env, solution_dir):
    """Copies the starting solution unless the folder exists (the participant's work is never overwritten)."""
    if os.path.lexists(solution_dir):
        return False
    source = os.path.join(env["dir"], env["manifest"]["solution"])
    parent = os.path.dirname(solution_dir)
    make_dirs(parent)
    tmp = os.path.join(parent, ".%s.tmp-%s" % (os.path.basename(solution_dir), os.urandom(4).hex()))
    shutil.copytree(source, tmp, symlinks=True)
    os.rename(tmp, solution_dir)
    fsync_dir(parent)
    return True


def cmd_status(ctx, args):
    print_status(ctx, build_status(ctx))


def cmd_start(ctx, args):
    manifest = ctx.manifest
    with ctx.session_lock():
        session = load_session(ctx)
        if session is None:
            session = {
                "environment": manifest["id"],
                "environment_version": manifest["version"],
                "time_limit_s": manifest["time_limit_s"],
                "started_at": iso(now_s()),
                "pauses": [],
                "ended_at": None,
                "end_reason": None,
            }
            save_session(ctx, session)
            ctx.record_event("start", started_at=session["started_at"], time_limit_s=session["time_limit_s"])
    print_status(ctx, build_status(ctx))


def cmd_instructions(ctx, args):
    manifest = ctx.manifest
    session = load_session(ctx)
    if session is None and not manifest["instructions_before_start"]:
        refuse(ctx, "instructions", "The instructions are shown once the session starts (reading time counts). "
                                    "Start the session first (runner.py start).")
    path = os.path.join(ctx.environment["dir"], manifest["instructions"])
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        markdown = f.read()
    if ctx.as_json:
        emit_json({"markdown": markdown, "title": manifest["title"]})
    else:
        sys.stdout.write(markdown if markdown.endswith("\n") else markdown + "\n")
        sys.stdout.flush()


def cmd_score(ctx, args):
    ctx.manifest  # a broken environment is reported before anything is recorded
    with ctx.session_lock():
        session = load_session(ctx)
        clock = Clock(session, now_s())
        refuse_unless_running(ctx, clock, "score")
        lock_fd = take_score_lock_or_busy(ctx, "score")
        try:
            recover_stale_jobs(ctx, session)
            job = start_job(ctx, "score", clock, lock_fd)
        finally:
            os.close(lock_fd)  # the job process holds its own copy of the lock
    events = JsonEvents(ctx.as_json)
    if args.follow:
        return follow_job(ctx, job, 0, events)
    if ctx.as_json:
        events.job(job, 0)
    else:
        print_line("Scoring job %s started. Follow it with: runner.py attach %s" % (job["job_id"], job["job_id"]))


def cmd_attach(ctx, args):
    if args.offset < 0:
        raise RunnerError("usage", "--offset must be 0 or more.")
    job = read_job(ctx, args.job_id)
    if job is None:
        raise RunnerError("usage", "There is no scoring job %r in %s. Use the job_id from `score` or `status`."
                          % (args.job_id, ctx.state_dir))
    return follow_job(ctx, job, args.offset, JsonEvents(ctx.as_json))


def cmd_log(ctx, args):
    session = load_session(ctx)
    entries = [e for e in scan_log(ctx, session).entries if e["index"] >= args.from_index]
    if ctx.as_json:
        emit_json({"entries": entries})
        return
    if not entries:
        print_line("The score log has no entries yet.")
        return
    print_line("%5s  %-8s  %-12s  %-6s  %s" % ("Entry", "Elapsed", "Score", "Counts", "Message"))
    for e in entries:
        print_line("%5d  %-8s  %-12s  %-6s  %s" % (
            e["index"], format_duration(e["elapsed_s"]), format_score(e["score"]),
            "yes" if e["counts"] else "no", e["message"].replace("\n", " ")[:100]))


def cmd_pause(ctx, args):
    if not ctx.manifest["pauses_allowed"]:
        refuse(ctx, "pause", "This environment does not allow pauses: the clock runs until the deadline.")
    with ctx.session_lock():
        session = load_session(ctx)
        clock = Clock(session, now_s())
        if clock.state != "paused":
            refuse_unless_running(ctx, clock, "pause")
            if running_job_under_lock(ctx):
                refuse(ctx, "pause", "A scoring job is running. Pause after it has finished.")
            session["pauses"].append({"start": iso(clock.now), "end": None})
            save_session(ctx, session)
            ctx.record_event("pause", at=iso(clock.now))
    print_status(ctx, build_status(ctx))


def running_job_under_lock(ctx):
    """Whether a job holds the score lock (call holding the session lock)."""
    fd = try_lock(ctx.state_path("score.lock"))
    if fd is None:
        return True
    os.close(fd)
    return False


def cmd_resume(ctx, args):
    if not ctx.manifest["pauses_allowed"]:
        refuse(ctx, "resume", "This environment does not allow pauses.")
    with ctx.session_lock():
        session = load_session(ctx)
        clock = Clock(session, now_s())
        if clock.state == "paused":
            session["pauses"][-1]["end"] = iso(clock.now)
            save_session(ctx, session)
            ctx.record_event("resume", at=iso(clock.now))
        elif clock.state != "running":
            refuse_unless_running(ctx, clock, "resume")
    print_status(ctx, build_status(ctx))


def cmd_end(ctx, args):
    manifest = ctx.manifest
    job = None
    with ctx.session_lock():
        session = load_session(ctx)
        clock = Clock(session, now_s())
        if clock.state == "not_started":
            refuse(ctx, "end", "The session has not started, so there is nothing to end.")
        if clock.state != "ended":
            if not args.yes:
                raise RunnerError("usage", "Ending the session is final: no more scoring and no more time. Run "
                                           "again with --yes to confirm.")
            lock_fd = take_score_lock_or_busy(ctx, "end")
            try:
                recover_stale_jobs(ctx, session)
                if clock.is_paused:
                    session["pauses"][-1]["end"] = iso(clock.now)
                    clock = Clock(session, clock.now)
                if manifest["scoring"]["aggregation"] == "last":
                    # The last score counts, so the solution as it stands at the end is scored once more.
                    job = start_job(ctx, "final", clock, lock_fd)
                session["ended_at"] = iso(clock.now)
                session["end_reason"] = "ended by the participant"
                save_session(ctx, session)
                ctx.record_event("end", at=session["ended_at"], final_job=job["job_id"] if job else None)
            finally:
                os.close(lock_fd)
    code = 0
    if job is not None and args.follow:
        code = follow_job(ctx, job, 0, JsonEvents(ctx.as_json))
    elif job is not None and not ctx.as_json:
        print_line("Final scoring job %s is running. Follow it with: runner.py attach %s"
                   % (job["job_id"], job["job_id"]))
    print_status(ctx, build_status(ctx))
    return code


def cmd_verify(ctx, args):
    session = load_session(ctx)
    scan = scan_log(ctx, session)
    result = {"intact": scan.intact, "entries": len(scan.entries), "first_bad": scan.first_bad,
              "reason": scan.reason}
    if ctx.as_json:
        emit_json(result)
    elif scan.intact:
        print_line("Score log intact: %d entries, every hash checks." % len(scan.entries))
    else:
        print_line("Score log NOT intact: %s" % scan.reason)
    return EXIT_CODES["ok"] if scan.intact else EXIT_CODES["integrity"]


def metr_csv_rows(entries):
    rows = []
    for e in entries:
        details = dict((k, e[k]) for k in (
            "index", "job_id", "kind", "ended_at", "elapsed_s", "exit_code", "signal", "timed_out", "killed",
            "duration_s", "solution_hash", "counts", "output_bytes", "output_truncated", "prev_hash", "hash"))
        rows.append([e["started_at"], "nan" if e["score"] is None else repr(float(e["score"])),
                     json.dumps({"message": e["message"]}, ensure_ascii=False),
                     json.dumps(details, ensure_ascii=False, sort_keys=True)])
    return rows


def cmd_export(ctx, args):
    session = load_session(ctx)
    if args.format == "jsonl":
        data = read_log_bytes(ctx)  # verbatim, so that the copy verifies exactly like the original
        count = len(scan_log(ctx, session).entries)
    else:
        entries = scan_log(ctx, session).entries
        count = len(entries)
        buffer = _StringSink()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["timestamp", "score", "message", "details"])
        writer.writerows(metr_csv_rows(entries))
        data = "".join(buffer.parts).encode("utf-8")
    if args.out:
        out = os.path.abspath(os.path.expanduser(args.out))
        write_atomic(out, data)
        if ctx.as_json:
            emit_json({"path": out, "format": args.format, "entries": count})
        else:
            print_line("Wrote %d entries to %s" % (count, out))
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


class _StringSink(object):
    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)


def convert_metr_row(number, row, notes):
    """One row of METR's score.log CSV in the runner's read-only import form."""
    raw_time = (row.get("timestamp") or "").strip()
    t = parse_iso(raw_time)
    assumed = False
    if t is None:
        t = parse_iso(raw_time, assume_utc=True)
        assumed = t is not None
    if t is not None and not ISO_RE.match(iso(t)):
        t, assumed = None, False  # outside years 1-9999 once the zone is applied: iso() cannot write it
    if assumed:
        notes.add("Timestamps without a time zone were read as UTC (METR's logger writes local time without "
                  "one; check the machine's time zone).")
    raw_score = (row.get("score") or "").strip()
    try:
        score = float(raw_score)
        if not math.isfinite(score):
            score = None
    except ValueError:
        score = None
    message_obj = _parse_json_text(row.get("message"))
    if isinstance(message_obj, dict) and set(message_obj) == {"message"} and isinstance(message_obj["message"], str):
        message = message_obj["message"]
    elif message_obj is None:
        message = (row.get("message") or "").strip()
    else:
        message = json.dumps(message_obj, ensure_ascii=False, sort_keys=True)
    details = _parse_json_text(row.get("details"))
    return {
        "index": number,
        "timestamp": iso(t) if t is not None else None,
        "timestamp_raw": raw_time,
        "timestamp_assumed_utc": assumed,
        "score": score,
        "message": message,
        "details": details if details is not None else ((row.get("details") or "").strip() or None),
    }


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):  # 1e999: Infinity would make the --json output invalid JSON
        raise ValueError("number out of range")
    return value


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)  # NaN, Infinity: same reason


def _parse_json_text(text):
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None


def cmd_import_metr_csv(ctx, args):
    try:
        # utf-8-sig: a byte-order mark (a CSV saved by a spreadsheet) is not part of the first column's name.
        with open(args.file, "r", encoding="utf-8-sig", errors="replace", newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            missing = [k for k in ("timestamp", "score") if k not in fields]
            if missing:
                raise RunnerError("usage", "%s is not a METR score log: the header lacks %s (expected "
                                           "timestamp,score,message,details)." % (args.file, ", ".join(missing)))
            notes = set()
            entries = [convert_metr_row(i, row, notes) for i, row in enumerate(reader)]
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise RunnerError("usage", "Cannot read %s (%s)." % (args.file, e.strerror))
    except csv.Error as e:
        raise RunnerError("usage", "%s is not valid CSV (%s)." % (args.file, e))
    result = {"source": os.path.abspath(args.file), "entries": entries, "notes": sorted(notes)}
    if ctx.as_json:
        emit_json(result)
        return
    for note in result["notes"]:
        print_line("Note: " + note)
    print_line("%5s  %-24s  %-12s  %s" % ("Row", "Time (UTC)", "Score", "Message"))
    for e in entries:
        print_line("%5d  %-24s  %-12s  %s" % (e["index"], e["timestamp"] or e["timestamp_raw"],
                                             format_score(e["score"]), e["message"][:100]))


# ---------------------------------------------------------------------------------------------
# Command line


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s (see: %s --help)" % (message, self.prog))


def terminal_columns():
    """The terminal's width as shutil.get_terminal_size reads it ($COLUMNS, then stdout, then 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own formatter, given the width it would compute: argparse makes one for every argument it
    adds, and left alone each imports shutil to ask for the width, a cost on every command."""

    def __init__(self, prog):
        argparse.HelpFormatter.__init__(self, prog, width=terminal_columns() - 2)


def command_named(argv):
    """The command in argv (the first word that is not an option or the value of --home), or None."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--home":
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def build_parser(only=None):
    """The command line. With `only`, just that command's arguments are set up: every command pays for
    the parser it builds, and most of that cost is one sub-parser per command."""
    parser = Parser(prog="runner.py", description="RE-Bench session runner %s" % RUNNER_VERSION,
                    formatter_class=HelpFormatter)
    parser.add_argument("--home", help="runner home (default: $REBENCH_HOME, /etc/rebench, ~/.rebench)")
    parser.add_argument("--json", action="store_true", dest="json_global", help="JSON output")
    parser.add_argument("--version", action="store_true", help="print the runner version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, help_text):
        if only is not None and name != only:
            return _Ignored()
        p = sub.add_parser(name, help=help_text, formatter_class=HelpFormatter) if help_text else sub.add_parser(
            name, formatter_class=HelpFormatter)
        p.add_argument("--json", action="store_true", help="JSON output")
        return p

    p = command("setup", "install an environment in this runner home (unprotected mode)")
    p.add_argument("--environment", required=True)
    p.add_argument("--solution-dir")
    p.add_argument("--environments-dir")
    command("status", "session state, time left, score that counts")
    command("start", "start the session (idempotent)")
    command("instructions", "print the environment's instructions")
    p = command("score", "start a scoring job")
    p.add_argument("--follow", action="store_true", help="stream the job's output and entry")
    p = command("attach", "follow a scoring job")
    p.add_argument("job_id")
    p.add_argument("--offset", type=int, default=0, help="output byte offset to resume from")
    p = command("log", "the score log's entries")
    p.add_argument("--from", type=int, default=0, dest="from_index")
    command("pause", "pause the session (when the environment allows it)")
    command("resume", "resume a paused session")
    p = command("end", "end the session early")
    p.add_argument("--yes", action="store_true", help="confirm")
    p.add_argument("--follow", action="store_true", help="stream a final scoring job")
    command("verify", "check the score log's hash chain")
    p = command("export", "export the score log")
    p.add_argument("--format", required=True, choices=("metr-csv", "jsonl"))
    p.add_argument("--out")
    p = command("import-metr-csv", "read a METR score.log CSV (read-only)")
    p.add_argument("file")
    p = command("_run-job", None)
    p.add_argument("job_id")
    p.add_argument("--lock-fd", type=int)
    return parser


class _Ignored(object):
    """Stands in for the sub-parser of a command that build_parser(only=...) leaves out."""

    def add_argument(self, *args, **kwargs):
        return None


COMMANDS = {
    "setup": cmd_setup, "status": cmd_status, "start": cmd_start, "instructions": cmd_instructions,
    "score": cmd_score, "attach": cmd_attach, "log": cmd_log, "pause": cmd_pause, "resume": cmd_resume,
    "end": cmd_end, "verify": cmd_verify, "export": cmd_export, "import-metr-csv": cmd_import_metr_csv,
    "_run-job": cmd_run_job,
}


def report_error(err, as_json):
    if as_json:
        emit_json({"error": error_object(err)})
    else:
        sys.stderr.write("runner: %s\n" % err.message)
        sys.stderr.flush()
    return EXIT_CODES[err.code]


def main(argv):
    try:
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")
    except AttributeError:
        pass
    as_json = "--json" in argv
    try:
        named = command_named(argv)
        quick = named in COMMANDS and "-h" not in argv and "--help" not in argv
        args = build_parser(named if quick else None).parse_args(argv)
    except UsageError as e:
        return report_error(RunnerError("usage", str(e)), as_json)
    if args.version:
        print_line(RUNNER_VERSION)
        return 0
    as_json = args.json_global or getattr(args, "json", False)
    if not args.command:
        return report_error(RunnerError("usage", "Name a command, e.g. `runner.py status` (see --help)."), as_json)
    if privileged_call():
        try:
            home = check_privileged_call(args)
        except RunnerError as e:
            if e.code == "refused":
                try:  # the organiser's audit trail keeps attempts to steer the root runner elsewhere
                    Context(PROTECTED_HOME, as_json).record_event("refused", action=args.command, reason=e.message,
                                                                  caller=sudo_caller())
                except Exception:
                    pass
            return report_error(e, as_json)
    else:
        home = resolve_home(args.home)
    ctx = Context(home, as_json)
    try:
        code = COMMANDS[args.command](ctx, args)
        return code or 0
    except RunnerError as e:
        return report_error(e, as_json)
    except BrokenPipeError:
        return EXIT_CODES["internal"]  # the reader went away; nothing was half-recorded
    except KeyboardInterrupt:
        return report_error(RunnerError("internal", "Interrupted."), as_json)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return report_error(RunnerError("internal", "The runner failed: %s: %s" % (type(e).__name__, e)), as_json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
