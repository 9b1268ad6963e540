"""What every part of the runner shares: exit codes, the error type, limits, and time (with an injectable
clock, so that tests move time instead of sleeping)."""

import math
import re
import time


class LazyModule(object):
    """Imports a module on first use: most commands never need these, and every command's start-up
    time is time the participant waits."""

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        if self._module is None:
            # With a dotted name (a module of this package) the module itself, not its package.
            self._module = __import__(self._name, None, None, ["__name__"] if "." in self._name else [], 0)
        return getattr(self._module, attr)


def package_data(name):
    """The bytes of a data file of this package (contract.json): from the package folder, or from inside
    runner.pyz."""
    import os

    here = os.path.dirname(__file__)
    loader = globals().get("__loader__")
    for key in (os.path.join(here, name), os.path.basename(here) + "/" + name):
        try:
            return loader.get_data(key)  # a folder's loader reads the file; runner.pyz's reads the archive
        except (AttributeError, OSError):
            continue
    with open(os.path.join(here, name), "rb") as f:
        return f.read()


try:  # the interpreter's own SHA-256: hashlib would load OpenSSL first, a few ms on every command
    from _sha256 import sha256  # noqa: F401  (Python 3.8-3.11)
except ImportError:
    try:
        from _sha2 import sha256  # noqa: F401  (Python 3.12+)
    except ImportError:
        from hashlib import sha256  # noqa: F401

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
INSTALLED_RUNNER = "/usr/local/bin/rebench-runner"  # where environments/provision-protected.sh installs it
TERM_GRACE_S = 5.0  # between SIGTERM and SIGKILL when a scorer times out
DRAIN_AFTER_EXIT_S = 2.0  # how long to keep reading output after the scorer exited
MESSAGE_LIMIT = 4000  # characters of a scorer's message kept in the score log
RESULT_LIMIT = 1024 * 1024  # characters read from a result file (it holds a score and a message)
POLL_S = 0.1
# How long a request waits for a job that has written its entry to release the score lock.
FINISHING_JOB_WAIT_S = 2.0
# How far the machine's clock may lag the session's own records before it counts as set back (NTP steps
# and the rounding of recorded times stay well inside this).
CLOCK_BACK_TOLERANCE_S = 2.0
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


def error_object(err):
    obj = {"code": err.code, "message": err.message}
    if err.job is not None:
        obj["job"] = err.job
    return obj


# ---------------------------------------------------------------------------------------------
# Time

_clock = time.time


def now_s():
    """The machine's time in seconds since the epoch, from the clock set by set_clock (time.time)."""
    return _clock()


def set_clock(clock):
    """Replaces the runner's clock (a function returning seconds since the epoch); None restores time.time."""
    global _clock
    _clock = clock if clock is not None else time.time


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


def is_number(v):
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def is_int(v):
    return is_number(v) and float(v).is_integer()


def describe(v):
    import json

    try:
        return json.dumps(v) if not isinstance(v, float) or is_number(v) else str(v)
    except (ValueError, RecursionError):
        return repr(v)[:200]


def clean_text(value, limit=None):
    """A string that encodes as UTF-8 (lone surrogates replaced), optionally shortened."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[:limit] + " [shortened]"
    return text


def format_duration(seconds):
    seconds = int(max(0, seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds % 3600 // 60, seconds % 60)


def format_score(score):
    return "no score" if score is None else "%.6g" % score
