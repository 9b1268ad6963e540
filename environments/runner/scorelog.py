"""The score log: one JSON entry per line, chained by hashes; appends under a lock; full checks (verify)."""

import json
import os

from .common import CLOCK_BACK_TOLERANCE_S, HASH_RE, RunnerError, iso, parse_iso, sha256
from .files import append_locked
from .session import genesis_hash

LOG_FILE = "score.log.jsonl"


def snapshot_summary_ok(v):
    if not isinstance(v, dict):
        return False
    if set(v) == {"error"}:
        return isinstance(v["error"], str)
    if set(v) != {"id", "files", "bytes", "left_out", "left_out_total"}:
        return False
    whole = (lambda n: isinstance(n, int) and not isinstance(n, bool) and n >= 0)
    return (isinstance(v["id"], str) and HASH_RE.match(v["id"]) is not None and whole(v["files"])
            and whole(v["bytes"]) and whole(v["left_out_total"]) and isinstance(v["left_out"], list)
            and all(isinstance(x, dict) and isinstance(x.get("path"), str) and isinstance(x.get("reason"), str)
                    for x in v["left_out"]))


def entry_problem(obj):
    """Why obj is not a well-formed score log entry (by the contract's score_log_entry), or None."""
    from .contract import problem  # only for lines that are read unchecked: status reads none once checkpointed

    return problem("score_log_entry", obj)


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry):
    body = dict((k, v) for k, v in entry.items() if k != "hash")
    return sha256(canonical_json(body).encode("utf-8")).hexdigest()


def parse_line(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


class LogScan(object):
    """Lines of the score log, checked in order (all of them, or those after a checkpoint).

    A line is one "\\n"-terminated record; an unterminated last line is "torn" (left by a crash in
    the middle of a write) and is not an entry. `entries` are the well-formed entries (what `log`
    shows); the first problem found is kept in first_bad/reason; `last_hash` is the hash the next
    entry links to; `next_index` is the next line number. With `start` (a checkpoint's numbers) the
    scan continues from there and does not keep the entries before it; job ids are then only checked
    for duplicates among the new lines (`verify` always scans everything).
    """

    def __init__(self, data, genesis, start=None, session_start=None, keep=True):
        self.entries = []
        self.keep = keep
        self.count = 0
        self.first_bad = None
        self.reason = None
        self.torn = None
        self.torn_entry = None  # the torn line, when it is a complete and correctly linked entry
        self.job_ids = {}
        self.session_start = session_start
        self.on_entry = None
        first = 0
        self.last_hash = genesis
        self.last_started = None
        if start is not None:
            first = start["next_index"]
            self.last_hash = start["last_hash"]
            self.first_bad = start.get("first_bad")
            self.reason = start.get("reason")
            self.last_started = parse_iso(start.get("last_started_at"))
        self.genesis = genesis
        self.first = first
        self.data = data

    def run(self, on_entry=None):
        self.on_entry = on_entry
        segments = self.data.split(b"\n")
        tail = segments.pop()  # b"" when the log ends with a newline
        for offset, raw in enumerate(segments):
            self._check(self.first + offset, raw)
        self.next_index = self.first + len(segments)
        self.complete_bytes = len(self.data) - len(tail)
        self.bad_before_tail = (self.first_bad, self.reason)  # what a checkpoint may keep: the tail can still end
        if tail:
            self.torn = tail
            number = self.next_index
            self.mark_bad(number, "line %d: the last line is incomplete (the runner was interrupted while "
                                  "writing it); it is not an entry" % number)
            obj = parse_line(tail)
            if (entry_problem(obj) is None and obj["hash"] == entry_hash(obj)
                    and obj["index"] == number and obj["prev_hash"] == self.last_hash
                    and obj["job_id"] not in self.job_ids):
                self.torn_entry = obj
        return self

    def mark_bad(self, number, reason):
        if self.first_bad is None:
            self.first_bad = number
            self.reason = reason

    def _check(self, number, raw):
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
        started = parse_iso(obj["started_at"])
        if obj["hash"] != entry_hash(obj):
            self.mark_bad(number, "line %d: hash does not match its contents (edited?)" % number)
        elif obj["index"] != number:
            self.mark_bad(number, "line %d: index %d where %d was expected (deleted, inserted or reordered?)"
                          % (number, obj["index"], number))
        elif obj["prev_hash"] != self.last_hash:
            if number == 0 and self.last_hash == self.genesis:
                why = "does not match the session's start time (was the start time changed?)"
            else:
                why = "does not match the hash of the entry before it (deleted, inserted or reordered?)"
            self.mark_bad(number, "line %d: prev_hash %s" % (number, why))
        elif obj["job_id"] in self.job_ids:
            self.mark_bad(number, "line %d: job %s already has an entry on line %d (duplicated?)"
                          % (number, obj["job_id"], self.job_ids[obj["job_id"]]))
        elif self.session_start is not None and started < self.session_start - CLOCK_BACK_TOLERANCE_S:
            self.mark_bad(number, "line %d: the job started at %s, before the session started (%s): the "
                                  "machine's clock was set back" % (number, obj["started_at"],
                                                                    iso(self.session_start)))
        elif self.last_started is not None and started < self.last_started - CLOCK_BACK_TOLERANCE_S:
            self.mark_bad(number, "line %d: the job started at %s, before the job of the entry before it: the "
                                  "machine's clock was set back" % (number, obj["started_at"]))
        self.job_ids.setdefault(obj["job_id"], number)
        self.count += 1
        if self.keep:
            self.entries.append(obj)
        if self.on_entry is not None:
            self.on_entry(obj)
        self.last_hash = obj["hash"]
        self.last_started = started if self.last_started is None else max(self.last_started, started)

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
        with open(ctx.state_path(LOG_FILE), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def scan_log(ctx, session):
    """Every line of the log, checked (what verify, log and export use)."""
    data = read_log_bytes(ctx)
    if session is None:
        scan = LogScan(b"", "0" * 64).run()
        if data:
            scan.mark_bad(0, "line 0: the score log has lines but the session has not started (copied in?)")
        return scan
    return LogScan(data, genesis_hash(session), session_start=parse_iso(session["started_at"])).run()


def append_entry(ctx, session, fields, on_written=None):
    """Appends the entry for fields["job_id"] unless the log already has one; returns the stored entry.

    on_written(scan, entry, fd), called still holding the lock once the entry is in the log, lets the status
    checkpoint take the full check this append has just made.

    Written by files.append_locked (flocked read-check-write, synced). A torn last line is first ended with a
    newline: if it is a complete entry it becomes a normal entry again, otherwise it stays in the log as
    evidence (verify reports it).
    """
    def decide(data):
        scan = LogScan(data, genesis_hash(session), session_start=parse_iso(session["started_at"])).run()
        last_hash = scan.last_hash
        next_index = scan.next_index
        if scan.torn is not None:
            next_index += 1
            if scan.torn_entry is not None:
                last_hash = scan.torn_entry["hash"]
                if scan.torn_entry["job_id"] == fields["job_id"]:
                    return None, scan.torn_entry, None
        existing = scan.find_job(fields["job_id"])
        if existing is not None:
            return None, existing, None
        entry = dict(fields)
        entry["index"] = next_index
        entry["prev_hash"] = last_hash
        entry["hash"] = entry_hash(entry)
        problem = entry_problem(entry)
        if problem:
            raise RunnerError("internal", "refusing to write a malformed score log entry: %s" % problem)
        after = None if on_written is None else (lambda fd: on_written(scan, entry, fd))
        return canonical_json(entry).encode("utf-8"), entry, after

    return append_locked(ctx.state_path(LOG_FILE), decide)


def tail_entries(ctx, session, from_index):
    """The well-formed entries from from_index on, read from the log's end when they are its last lines and
    form an unbroken run (the usual `log --from N` after a new entry); otherwise from a full scan."""
    if session is None:
        return [e for e in scan_log(ctx, session).entries if e["index"] >= from_index]
    path = ctx.state_path(LOG_FILE)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            window = min(size, 256 * 1024)
            f.seek(size - window)
            data = f.read(window)
    except FileNotFoundError:
        return []
    if from_index > 0 and data.endswith(b"\n"):
        lines = data.split(b"\n")[:-1]
        if window < size:
            lines = lines[1:]  # the first may be cut
        found = []
        for raw in reversed(lines):
            obj = parse_line(raw)
            if entry_problem(obj) is not None or obj["hash"] != entry_hash(obj):
                break
            if found and (obj["index"] != found[-1]["index"] - 1 or found[-1]["prev_hash"] != obj["hash"]):
                break
            if obj["index"] < from_index:
                return list(reversed(found))
            found.append(obj)
    return [e for e in scan_log(ctx, session).entries if e["index"] >= from_index]
