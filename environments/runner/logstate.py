"""What status needs from the score log, read incrementally: a checkpoint (state/log-checkpoint.json) keeps the
log's length, last hash and running totals, and each status checks only the lines written since. A status
with 10,000 entries costs what one with 10 does; `verify` still checks every line."""

import os

from .common import parse_iso
from .files import read_from, read_state_file, write_json_atomic
from .scorelog import LOG_FILE, LogScan, parse_line
from .session import genesis_hash

CHECKPOINT_FILE = "log-checkpoint.json"
CHECKPOINT_VERSION = 1
LAST_LINE_WINDOW = 256 * 1024  # an entry's line is far shorter (its message is at most 4,000 characters)

# The checkpoint of the log this process read last (a `serve` process skips reading the file again).
_memory = {}


def _better(a, b, direction):
    """Whether score a beats score b in this direction (ties keep the earlier entry)."""
    return a < b if direction == "lower" else a > b


class LogSummary(object):
    def __init__(self, cp):
        self.cp = cp

    @property
    def entries(self):
        return self.cp["count"]

    @property
    def intact(self):
        return self.cp["first_bad"] is None and not self.cp.get("torn")

    def counted(self, scoring):
        chosen = self.cp["last"] if scoring["aggregation"] == "last" else self.cp["best"]
        if chosen is None:
            return None
        ys, yr = scoring["starting_score"], scoring["reference_score"]
        return {"index": chosen["index"], "score": chosen["score"],
                "normalized": (chosen["score"] - ys) / (yr - ys)}

    @property
    def last_times(self):
        return (parse_iso(self.cp.get("last_started_at")), parse_iso(self.cp.get("last_ended_at")))


def _empty(session, direction):
    return {"version": CHECKPOINT_VERSION, "session_started_at": session["started_at"] if session else None,
            "direction": direction, "size": 0, "mtime_ns": None, "last_hash": genesis_hash(session) if session else "0" * 64,
            "next_index": 0, "count": 0, "first_bad": None, "reason": None, "best": None, "last": None,
            "last_started_at": None, "last_ended_at": None}


def _checkpoint_problem(cp):
    if not isinstance(cp, dict) or cp.get("version") != CHECKPOINT_VERSION:
        return "not a checkpoint of this runner"
    for key in ("size", "next_index", "count"):
        if not isinstance(cp.get(key), int) or cp[key] < 0:
            return "%s is not a count" % key
    return None


def _ends_at_checkpoint(data, cp):
    """Whether data (bytes of the log that end where the checkpoint ends) ends with the checkpoint's last
    entry: a complete line with the checkpoint's last hash and index."""
    if not data.endswith(b"\n"):
        return False
    body = data[:-1]
    obj = parse_line(body[body.rfind(b"\n") + 1:])
    return isinstance(obj, dict) and obj.get("hash") == cp["last_hash"] and (
        not isinstance(obj.get("index"), int) or obj["index"] == cp["next_index"] - 1)


def _same_log(cp, session, direction):
    return cp.get("session_started_at") == session["started_at"] and cp.get("direction") == direction


def _describes(cp, session, direction, size, read):
    """Whether the checkpoint describes a log of `size` bytes whose bytes read(start, end) gives: same session
    and direction, the log no shorter, and the line that ends where the checkpoint ends has its last hash."""
    if not _same_log(cp, session, direction) or cp["size"] > size:
        return False
    if cp["size"] == 0:
        return cp["next_index"] == 0 and cp["last_hash"] == _empty(session, direction)["last_hash"]
    return _ends_at_checkpoint(read(max(0, cp["size"] - LAST_LINE_WINDOW), cp["size"]), cp)


def _take(cp, direction):
    """A function that adds one well-formed entry to the checkpoint's running totals."""
    def take(entry):
        cp["last_started_at"] = entry["started_at"]
        cp["last_ended_at"] = entry["ended_at"]
        if not entry["counts"] or entry["score"] is None:
            return
        mark = {"index": entry["index"], "score": entry["score"]}
        cp["last"] = mark
        if cp["best"] is None or _better(entry["score"], cp["best"]["score"], direction):
            cp["best"] = mark
    return take


def _save(ctx, cp):
    path = ctx.state_path(CHECKPOINT_FILE)
    _memory[path] = cp
    try:
        write_json_atomic(path, cp, sync=False)
    except OSError:
        pass  # a checkpoint that cannot be saved only costs the next status a longer read


def log_summary(ctx, session, scoring):
    """The log's entry count, chain state and the entries that could count, from the checkpoint and the
    lines after it. The checkpoint is saved when it moved (without fsync: it can always be rebuilt).

    The log's modification time is kept too: a log rewritten in place (same length, another time) is checked
    again from its first line."""
    path = ctx.state_path(LOG_FILE)
    direction = scoring["direction"]
    try:
        st = os.stat(path)
        size, mtime_ns = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime_ns = 0, None
    cp_path = ctx.state_path(CHECKPOINT_FILE)
    if session is None:
        cp = _empty(None, direction)
        if size:
            cp["first_bad"] = 0
            cp["reason"] = "line 0: the score log has lines but the session has not started (copied in?)"
        return LogSummary(cp)
    cp = _memory.get(cp_path)
    if cp is None or cp["size"] > size or cp.get("mtime_ns") != mtime_ns:
        cp = read_state_file(cp_path, None, _checkpoint_problem)
    if cp is not None and cp["size"] == size and cp.get("mtime_ns") == mtime_ns and cp.get(
            "session_started_at") == session["started_at"] and cp.get("direction") == direction:
        _memory[cp_path] = cp
        return LogSummary(cp)
    if cp is None or cp["size"] == size or not _describes(
            cp, session, direction, size, lambda start, end: read_from(path, start, end - start)):
        cp = _empty(session, direction)  # new, unknown, or rewritten in place: check every line
    data = read_from(path, cp["size"], size - cp["size"])
    new = dict(cp)
    scan = LogScan(data, genesis_hash(session), start=cp, session_start=parse_iso(session["started_at"]),
                   keep=False).run(_take(new, direction))
    new["size"] = cp["size"] + scan.complete_bytes
    new["mtime_ns"] = mtime_ns
    new["last_hash"] = scan.last_hash
    new["next_index"] = scan.next_index
    new["count"] = cp["count"] + scan.count
    new["first_bad"], new["reason"] = scan.bad_before_tail
    saved = dict(new)
    if scan.torn is not None:
        saved["mtime_ns"] = None  # the torn line is read again next time
        new["torn"] = True
        if new["first_bad"] is None:
            new["first_bad"], new["reason"] = scan.first_bad, scan.reason
    _save(ctx, saved)
    return LogSummary(new)


class AppendCheckpoint(object):
    """The checkpoint as append_entry uses it: start(data) is the checkpoint that describes the first bytes of
    the log read under the lock (or None: check every line), written(...) moves it past the new entry."""

    def __init__(self, ctx, session, direction):
        self.ctx = ctx
        self.session = session
        self.direction = direction
        self.base = None

    def start(self, data):
        path = self.ctx.state_path(CHECKPOINT_FILE)
        try:
            mtime_ns = os.stat(self.ctx.state_path(LOG_FILE)).st_mtime_ns
        except OSError:
            mtime_ns = None
        cp = _memory.get(path)
        if not self._describes(cp, data, mtime_ns):
            cp = read_state_file(path, None, _checkpoint_problem)
        self.base = cp if self._describes(cp, data, mtime_ns) else None
        return self.base

    def _describes(self, cp, data, mtime_ns):
        if cp is None or cp.get("torn"):
            return False
        if cp["size"] == len(data) and cp.get("mtime_ns") != mtime_ns:
            return False  # rewritten in place: check every line
        return _describes(cp, self.session, self.direction, len(data), lambda start, end: data[start:end])

    def written(self, scan, entry, fd):
        if scan.torn is not None:
            return  # the next status reads the log again
        base = self.base or _empty(self.session, self.direction)
        cp = dict(base)
        take = _take(cp, self.direction)
        for e in scan.entries:
            take(e)
        take(entry)
        st = os.fstat(fd)
        cp.update(size=st.st_size, mtime_ns=st.st_mtime_ns, last_hash=entry["hash"], next_index=entry["index"] + 1,
                  count=base["count"] + scan.count + 1, first_bad=scan.first_bad, reason=scan.reason)
        _save(self.ctx, cp)


def checkpoint_after_append(ctx, session):
    """For append_entry: the checkpoint to start from and to move past the new entry (None without a manifest)."""
    try:
        direction = ctx.manifest["scoring"]["direction"]
    except Exception:
        return None
    return AppendCheckpoint(ctx, session, direction)
