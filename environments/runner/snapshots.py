"""The snapshot store: every scored state of the solution folder, kept and restorable.

At each Score now the runner keeps the solution folder as it was scored. Files are stored once by the
SHA-256 of their bytes (an unchanged file costs nothing the next time), and a snapshot is a small JSON
"tree" that lists every kept file with its hash, and every file that was left out with the reason. The
tree is itself named by the SHA-256 of its canonical JSON, so a snapshot id says exactly what was kept.

Layout under the store's root (the runner puts it in its state folder, which in protected mode belongs
to root, so the participant cannot change what was kept):

    objects/<2 hex>/<62 hex>   file contents, named by their SHA-256
    trees/<64 hex>.json        one snapshot: kept files, what was left out and why, the limits used
    cache/<64 hex>.json        stat cache per solution folder (size, mtime, ctime, inode -> hash), so an
                               unchanged file is not read again; a file whose ctime moved is always read
    tmp/                       files being written (renamed into objects/ when complete)

What is kept follows the environment's `solution.snapshot` settings (see validate_config): include and
exclude patterns, a cap per file, a cap per snapshot and a cap on the number of files. Nothing is dropped
silently: each file or folder left out is listed in the tree with a reason code.

Reading and writing the participant's folder never follows a symbolic link: folders are opened one
component at a time with O_NOFOLLOW, a link is kept as a link, and anything that is not a regular file,
a folder or a link is left out. When the runner runs as root for a participant (protected mode), pass
reader_uid: a file the participant could not read is left out, so a snapshot can never carry a file into
the store that the participant could not have copied themselves; restored files are given to `owner`.

Python 3.8+ standard library only. The module imports nothing from the runner, so it can be tested alone.
"""

import errno
import json
import os
import re
import stat
import time

try:
    from _sha256 import sha256  # Python 3.8-3.11: the interpreter's own, without loading OpenSSL
except ImportError:
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256

FORMAT = 1
DEFAULT_EXCLUDE = (".git/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/")
DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_FILES = 20000
MAX_PATTERNS = 200
MAX_PATTERN_LENGTH = 500
# A tree lists at most this many left-out paths; left_out_total counts them all.
LEFT_OUT_LISTED = 500
ID_RE = re.compile(r"^[0-9a-f]{64}$")
BLOCK = 1 << 20

# Why something was left out of a snapshot (the tree's left_out[].reason).
REASONS = {
    "excluded": "matches an exclude pattern",
    "not-included": "matches no include pattern",
    "too-large": "is larger than the cap per file",
    "over-total": "would take the snapshot over its cap in bytes",
    "too-many-files": "would take the snapshot over its cap in files",
    "unreadable": "could not be read",
    "not-readable-by-participant": "is not readable by the participant",
    "special": "is not a regular file, folder or link",
    "changed": "changed while it was read",
}


class SnapshotError(Exception):
    """A problem with a snapshot request; the message says what is wrong and what to do."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------
# Settings: the environment's solution.snapshot


def _whole(lo, hi):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def validate_config(raw, where="solution.snapshot"):
    """The snapshot settings with defaults filled in; raises ValueError naming the bad field.

    raw is None (all defaults) or an object with optional fields:
      include         patterns of files to keep (default: every file)
      exclude         patterns left out, added to the defaults .git/, __pycache__/, *.pyc,
                      .ipynb_checkpoints/
      max_file_bytes  a file larger than this is left out (default 16 MiB)
      max_total_bytes the files kept by one snapshot add up to at most this (default 256 MiB)
      max_files       at most this many files per snapshot (default 20000)
    Patterns work as in .gitignore, without "!": "*" and "?" stay within a path segment, "**" spans
    segments, a trailing "/" matches folders only, and a pattern with a "/" elsewhere is anchored at the
    solution folder while one without matches a name at any depth.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError("%s: expected an object, got %s" % (where, json.dumps(raw)))
    allowed = ("include", "exclude", "max_file_bytes", "max_total_bytes", "max_files")
    unknown = sorted(k for k in raw if k not in allowed)
    if unknown:
        raise ValueError("%s: unknown field %s (allowed: %s)" % (
            where, ", ".join(repr(k) for k in unknown), ", ".join(allowed)))
    config = {}
    for key in ("include", "exclude"):
        value = raw.get(key)
        if value is None:
            config[key] = None if key == "include" else list(DEFAULT_EXCLUDE)
            continue
        if not isinstance(value, list) or len(value) > MAX_PATTERNS:
            raise ValueError("%s.%s: expected a list of at most %d patterns, e.g. [\"*.py\", \"configs/\"]"
                             % (where, key, MAX_PATTERNS))
        for i, p in enumerate(value):
            problem = pattern_problem(p)
            if problem:
                raise ValueError("%s.%s[%d]: %s" % (where, key, i, problem))
        config[key] = list(value) if key == "include" else list(DEFAULT_EXCLUDE) + [
            p for p in value if p not in DEFAULT_EXCLUDE]
    limits = (
        ("max_file_bytes", DEFAULT_MAX_FILE_BYTES, 0, 1 << 40, "a whole number of bytes from 0 to 2^40"),
        ("max_total_bytes", DEFAULT_MAX_TOTAL_BYTES, 0, 1 << 42, "a whole number of bytes from 0 to 2^42"),
        ("max_files", DEFAULT_MAX_FILES, 0, 1000000, "a whole number from 0 to 1000000"),
    )
    for key, default, lo, hi, expected in limits:
        value = raw.get(key, default)
        if not _whole(lo, hi)(value):
            raise ValueError("%s.%s: expected %s, got %s" % (where, key, expected, json.dumps(value)))
        config[key] = value
    return config


def pattern_problem(p):
    """Why p is not a usable pattern, or None."""
    if not isinstance(p, str) or not p.strip():
        return "expected a non-empty pattern string, got %s" % json.dumps(p)
    if len(p) > MAX_PATTERN_LENGTH:
        return "a pattern of at most %d characters" % MAX_PATTERN_LENGTH
    if p.startswith("!"):
        return "%s: negation (\"!\") is not supported; list what to keep under include instead" % json.dumps(p)
    if "\0" in p or "\\" in p:
        return "%s: patterns use \"/\" and no backslashes" % json.dumps(p)
    if ".." in p.strip("/").split("/"):
        return "%s: \"..\" cannot appear in a pattern (patterns stay inside the solution folder)" % json.dumps(p)
    try:
        _compile(p)
    except re.error as e:
        return "%s is not a valid pattern (%s)" % (json.dumps(p), e)
    return None


def _glob_regex(glob):
    """The regular expression of a glob over "/"-separated paths."""
    out = []
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                at_start = i == 0 or glob[i - 1] == "/"
                j = i + 2
                if at_start and j < n and glob[j] == "/":
                    out.append("(?:[^/]*/)*")  # "**/": zero or more folders
                    i = j + 1
                    continue
                out.append(".*")
                i = j
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 2 if glob.startswith("[!", i) or glob.startswith("[^", i) else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1:j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("(?!/)[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _compile(pattern):
    """(regex, dirs_only, anchored) of one pattern."""
    dirs_only = pattern.endswith("/")
    body = pattern.strip("/") if dirs_only else pattern.lstrip("/")
    anchored = "/" in body or pattern.startswith("/")
    return re.compile("^" + _glob_regex(body) + "$"), dirs_only, anchored


class Patterns(object):
    """A list of patterns; match() gives the first that matches a path, or None."""

    def __init__(self, patterns):
        self.patterns = list(patterns or [])
        self._compiled = [(p,) + _compile(p) for p in self.patterns]

    def match(self, rel, is_dir):
        name = rel.rsplit("/", 1)[-1]
        for pattern, regex, dirs_only, anchored in self._compiled:
            if dirs_only and not is_dir:
                continue
            if regex.match(rel if anchored else name):
                return pattern
        return None

    def match_within(self, rel):
        """A folder pattern that matches one of the folders above rel, or None."""
        parts = rel.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            hit = self.match("/".join(parts[:k]), True)
            if hit:
                return hit
        return None


# ---------------------------------------------------------------------------------------------
# Safe access to the participant's folder


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _open_dir(name, dir_fd=None):
    return os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)


def _open_parent(root_fd, rel, create=False, owner=None):
    """A file descriptor of rel's folder, reached one component at a time without following links.

    With create, missing folders are made (mode 0755, given to owner). Raises SnapshotError when a
    component is a link or a file.
    """
    parts = rel.split("/")[:-1]
    fd = os.dup(root_fd)
    try:
        for k, part in enumerate(parts):
            try:
                nxt = _open_dir(part, fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                if owner is not None:
                    os.chown(part, owner[0], owner[1], dir_fd=fd, follow_symlinks=False)
                nxt = _open_dir(part, fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise SnapshotError("conflict", "%s is not a folder (a file or a link is in its place)"
                                        % "/".join(parts[:k + 1]))
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


class _InFolderOf(object):
    """The one way to reach a kept path: `with _InFolderOf(root_fd, rel) as (folder, name)` gives a descriptor
    of rel's folder, reached without following links (_open_parent), and rel's last component; the folder is
    closed after. Raises as _open_parent does (FileNotFoundError, SnapshotError)."""

    def __init__(self, root_fd, rel, create=False, owner=None):
        self.args = (root_fd, rel, create, owner)
        self.folder = None

    def __enter__(self):
        root_fd, rel, create, owner = self.args
        self.folder = _open_parent(root_fd, rel, create, owner)
        return self.folder, rel.rsplit("/", 1)[-1]

    def __exit__(self, *exc):
        os.close(self.folder)
        return False


class _Reader(object):
    """Whether the participant (reader_uid) may read a file or folder, from its owner and mode bits."""

    def __init__(self, uid):
        self.uid = uid
        self.groups = set()
        if uid is not None:
            try:
                import pwd
                entry = pwd.getpwuid(uid)
                self.groups = set(os.getgrouplist(entry.pw_name, entry.pw_gid))
            except (KeyError, ImportError, OSError):
                self.groups = set()

    def may(self, st, need_exec=False):
        if self.uid is None or self.uid == 0:
            return True
        if st.st_uid == self.uid:
            bits = stat.S_IRUSR | (stat.S_IXUSR if need_exec else 0)
        elif st.st_gid in self.groups:
            bits = stat.S_IRGRP | (stat.S_IXGRP if need_exec else 0)
        else:
            bits = stat.S_IROTH | (stat.S_IXOTH if need_exec else 0)
        return st.st_mode & bits == bits


# ---------------------------------------------------------------------------------------------
# The store


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_id(snapshot_id):
    if not isinstance(snapshot_id, str) or not ID_RE.match(snapshot_id):
        raise SnapshotError("usage", "%r is not a snapshot id (64 hexadecimal characters, as the score log "
                                     "entry's snapshot field holds)." % (snapshot_id,))
    return snapshot_id


class Store(object):
    """The snapshots of one session, under root (created on first use, mode 0755)."""

    def __init__(self, root):
        self.root = root

    # --- paths and objects ---

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    def object_path(self, digest):
        return self._path("objects", digest[:2], digest[2:])

    def tree_path(self, snapshot_id):
        return self._path("trees", snapshot_id + ".json")

    def _ensure(self):
        for sub in ("objects", "trees", "cache", "tmp"):
            os.makedirs(self._path(sub), 0o755, exist_ok=True)

    def has_object(self, digest):
        return os.path.isfile(self.object_path(digest))

    def _commit_tmp(self, tmp, digest):
        """Moves a complete, synced temporary file into objects/ under its hash (or drops it if present)."""
        final = self.object_path(digest)
        if os.path.exists(final):
            os.unlink(tmp)
            return False
        os.makedirs(os.path.dirname(final), 0o755, exist_ok=True)
        os.replace(tmp, final)
        return True

    def read_object(self, digest, expected_size=None):
        """An object's bytes, checked against its name (a changed object is an integrity error)."""
        return _read_addressed(
            self.object_path(digest), digest, expected_size,
            SnapshotError("integrity", "The stored file %s is missing from the snapshot store %s. The snapshot "
                                       "cannot be restored; tell the organiser." % (digest, self.root)),
            SnapshotError("integrity", "The stored file %s in %s does not match its hash (changed after it was "
                                       "kept). Tell the organiser." % (digest, self.root)))

    # --- trees ---

    def tree(self, snapshot_id):
        """A snapshot's tree, checked against its id."""
        check_id(snapshot_id)
        raw = _read_addressed(
            self.tree_path(snapshot_id), snapshot_id, None,
            SnapshotError("not-found", "There is no snapshot %s in %s. Use the snapshot id of a score log entry."
                          % (snapshot_id, self.root)),
            SnapshotError("integrity", "The snapshot %s in %s does not match its id (changed after it was kept). "
                                       "Tell the organiser." % (snapshot_id, self.root)))
        return json.loads(raw.decode("utf-8"))

    def _write_tree(self, tree):
        data = canonical_json(tree).encode("utf-8")
        snapshot_id = sha256(data).hexdigest()
        path = self.tree_path(snapshot_id)
        if not os.path.exists(path):
            tmp = self._path("tmp", "tree-%d-%s" % (os.getpid(), os.urandom(4).hex()))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        return snapshot_id

    # --- taking a snapshot ---

    def take(self, solution_dir, config=None, reader_uid=None, note=None):
        """Keeps the solution folder's state; returns the summary (id, counts, what was left out).

        note is a short label stored in the tree (e.g. "before restoring <id>"); None for a scored state.
        """
        config = validate_config(None) if config is None else config
        self._ensure()
        started = time.time()
        cache_path = self._path("cache", sha256(os.path.realpath(solution_dir).encode("utf-8", "surrogateescape"))
                                .hexdigest() + ".json")
        cache = _load_cache(cache_path)
        sink = _StoreSink(self, cache)
        scan = _scan(solution_dir, config, reader_uid, sink)
        tree = scan.tree(config, note)
        snapshot_id = self._write_tree(tree)
        _save_cache(cache_path, sink.new_cache, self._path("tmp"))
        return summary(snapshot_id, tree, new_bytes=sink.new_bytes, duration_s=round(time.time() - started, 3))

    def scan_current(self, solution_dir, config=None, reader_uid=None):
        """The tree the folder would give now, without storing anything (for comparisons and plans)."""
        config = validate_config(None) if config is None else config
        return _scan(solution_dir, config, reader_uid, _HashSink()).tree(config, None)

    # --- comparing ---

    def changes(self, snapshot_id, against=None, solution_dir=None, config=None, reader_uid=None):
        """What differs from snapshot_id to `against` (another snapshot id) or to the folder now.

        Returns {"from", "to", "changes": [{path, change, before, after, binary}]}, change being "added",
        "removed" or "modified"; before/after are the file records of the two sides (None where absent).
        binary says whether either side's contents look binary (a NUL byte in its first 8000 bytes), so a
        diff editor can say so instead of showing bytes.
        """
        old = self.tree(snapshot_id)
        if against is not None:
            new = self.tree(against)
            to = against
        else:
            if solution_dir is None:
                raise SnapshotError("usage", "Give another snapshot id or the solution folder to compare with.")
            new = self.scan_current(solution_dir, config, reader_uid)
            to = "current"
        a = dict((f["path"], f) for f in old["files"])
        b = dict((f["path"], f) for f in new["files"])
        out = []
        for path in sorted(set(a) | set(b)):
            x, y = a.get(path), b.get(path)
            if x == y:
                continue
            change = "added" if x is None else "removed" if y is None else "modified"
            binary = False
            if x is not None and x["type"] == "file" and self.has_object(x["sha256"]):
                binary = binary or _looks_binary(self._head(x["sha256"]))
            if y is not None and y["type"] == "file":
                if self.has_object(y["sha256"]):
                    binary = binary or _looks_binary(self._head(y["sha256"]))
                elif solution_dir is not None and against is None:
                    binary = binary or _looks_binary(_head_of_file(solution_dir, path))
            out.append({"path": path, "change": change, "before": x, "after": y, "binary": binary})
        return {"from": snapshot_id, "to": to, "changes": out,
                "left_out_before": old.get("left_out_total", 0), "left_out_after": new.get("left_out_total", 0)}

    def _head(self, digest):
        with open(self.object_path(digest), "rb") as f:
            return f.read(8000)

    def read(self, snapshot_id, path):
        """The kept bytes of one file of a snapshot (for a diff editor)."""
        for f in self.tree(snapshot_id)["files"]:
            if f["path"] == path:
                if f["type"] == "link":
                    raise SnapshotError("not-a-file", "%s is a link to %s in snapshot %s, not a file."
                                        % (path, f["target"], snapshot_id))
                return self.read_object(f["sha256"], f["size"])
        raise SnapshotError("not-found", "Snapshot %s has no file %s." % (snapshot_id, path))

    # --- restoring ---

    def plan_restore(self, snapshot_id, solution_dir, config=None, reader_uid=None):
        """What restoring snapshot_id would do to the folder now: {write, delete, unchanged, untouched}.

        write: paths that will be created or overwritten; delete: kept paths absent from the snapshot;
        untouched: paths that differ but are left as they are, because they were left out of the snapshot
        or cannot be kept now (too large, excluded), so a restore never destroys what it cannot bring back.
        """
        target = self.tree(snapshot_id)
        current = self.scan_current(solution_dir, config, reader_uid)
        return _plan(target, current)

    def restore(self, snapshot_id, solution_dir, config=None, reader_uid=None, owner=None):
        """Makes the solution folder hold snapshot_id's files; the current state is kept first.

        Returns {"kept_as": <summary of the snapshot of the state before>, "write", "delete",
        "unchanged", "untouched"}. Restoring kept_as undoes the restore. owner (uid, gid) is given the
        files and folders written (protected mode: the participant); None keeps the runner's own.
        """
        target = self.tree(snapshot_id)
        for f in target["files"]:  # every object present and intact before anything is changed
            if f["type"] == "file":
                if not self.has_object(f["sha256"]):
                    self.read_object(f["sha256"])  # raises the integrity error
        before = self.take(solution_dir, config, reader_uid, note="before restoring %s" % snapshot_id)
        current = self.tree(before["id"])
        plan = _plan(target, current)
        root_fd = _open_dir(solution_dir)
        try:
            for rel in plan["delete"]:
                _remove(root_fd, rel)
            _prune_empty_dirs(root_fd, plan["delete"], set(_parents(f["path"] for f in target["files"])))
            by_path = dict((f["path"], f) for f in target["files"])
            for rel in plan["write"]:
                f = by_path[rel]
                if f["type"] == "file":
                    data = self.read_object(f["sha256"], f["size"])
                    _write_file(root_fd, rel, data, 0o755 if f.get("executable") else 0o644, owner)
                else:
                    _write_link(root_fd, rel, f["target"], owner)
        finally:
            os.close(root_fd)
        result = dict(plan)
        result["kept_as"] = before
        result["restored"] = snapshot_id
        return result

    # --- export ---

    def export_tar(self, snapshot_id, fileobj):
        """Writes a snapshot as a gzip'd tar to fileobj: its files, and SNAPSHOT.json (the tree itself)."""
        import io
        import tarfile
        tree = self.tree(snapshot_id)
        mtime = int(time.time())
        with tarfile.open(fileobj=fileobj, mode="w:gz") as tar:
            meta = (json.dumps(dict(tree, id=snapshot_id), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
            info = tarfile.TarInfo("SNAPSHOT.json")
            info.size, info.mtime, info.mode = len(meta), mtime, 0o644
            tar.addfile(info, io.BytesIO(meta))
            for f in tree["files"]:
                info = tarfile.TarInfo("solution/" + f["path"])
                info.mtime = mtime
                if f["type"] == "link":
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, f["target"], 0o777
                    tar.addfile(info)
                else:
                    data = self.read_object(f["sha256"], f["size"])
                    info.size, info.mode = len(data), 0o755 if f.get("executable") else 0o644
                    tar.addfile(info, io.BytesIO(data))


def summary(snapshot_id, tree, new_bytes=None, duration_s=None, listed=50):
    """What a score log entry and a client need to know of a snapshot: its id, counts, and the first
    `listed` paths left out with their reasons (the tree lists up to LEFT_OUT_LISTED; the total counts all)."""
    out = {
        "id": snapshot_id,
        "files": len(tree["files"]),
        "bytes": tree["bytes"],
        "left_out": tree["left_out"][:listed],
        "left_out_total": tree["left_out_total"],
    }
    if new_bytes is not None:
        out["new_bytes"] = new_bytes
    if duration_s is not None:
        out["duration_s"] = duration_s
    return out


# ---------------------------------------------------------------------------------------------
# Scanning the folder


class _HashSink(object):
    """Hashes file contents without keeping them."""

    def file(self, rel, fd, st):
        h = sha256()
        size = 0
        while True:
            block = os.read(fd, BLOCK)
            if not block:
                break
            h.update(block)
            size += len(block)
        return h.hexdigest(), size


class _StoreSink(object):
    """Hashes and keeps file contents, skipping files the stat cache vouches for."""

    def __init__(self, store, cache):
        self.store = store
        self.cache = cache
        self.new_cache = {"written_ns": time.time_ns(), "files": {}}
        self.new_bytes = 0

    def file(self, rel, fd, st):
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        hit = self.cache.get("files", {}).get(rel)
        # A file changed within a second of the cache being written could change again unseen (same
        # times): it is read again.
        if (isinstance(hit, list) and len(hit) == 5 and hit[:4] == key
                and st.st_ctime_ns < self.cache.get("written_ns", 0) - 1000000000
                and self.store.has_object(hit[4])):
            self.new_cache["files"][rel] = hit
            return hit[4], st.st_size
        tmp = self.store._path("tmp", "obj-%d-%s" % (os.getpid(), os.urandom(6).hex()))
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o644)
        h = sha256()
        size = 0
        try:
            while True:
                block = os.read(fd, BLOCK)
                if not block:
                    break
                h.update(block)
                size += len(block)
                _write_all(out, block)
            os.fsync(out)
        except BaseException:
            os.close(out)
            os.unlink(tmp)
            raise
        os.close(out)
        digest = h.hexdigest()
        if self.store._commit_tmp(tmp, digest):
            self.new_bytes += size
        self.new_cache["files"][rel] = key + [digest]
        return digest, size


class _Scan(object):
    def __init__(self):
        self.files = []
        self.left_out = []
        self.bytes = 0

    def leave_out(self, rel, reason, size=None):
        item = {"path": rel, "reason": reason}
        if size is not None:
            item["size"] = size
        self.left_out.append(item)

    def tree(self, config, note):
        self.files.sort(key=lambda f: f["path"])
        self.left_out.sort(key=lambda f: f["path"])
        tree = {
            "format": FORMAT,
            "files": self.files,
            "bytes": self.bytes,
            "left_out": self.left_out[:LEFT_OUT_LISTED],
            "left_out_total": len(self.left_out),
            "limits": {
                "include": config["include"],
                "exclude": config["exclude"],
                "max_file_bytes": config["max_file_bytes"],
                "max_total_bytes": config["max_total_bytes"],
                "max_files": config["max_files"],
            },
        }
        if note:
            tree["note"] = note
        return tree


def _scan(solution_dir, config, reader_uid, sink):
    include = Patterns(config["include"]) if config["include"] is not None else None
    exclude = Patterns(config["exclude"])
    reader = _Reader(reader_uid)
    scan = _Scan()
    try:
        root_fd = _open_dir(solution_dir)
    except OSError as e:
        raise SnapshotError("solution", "The solution folder %s cannot be opened (%s). It must be a folder, not a "
                                        "link; check runner.json's solution_dir." % (solution_dir, e.strerror))
    try:
        _walk(root_fd, "", config, include, exclude, reader, scan, sink)
    finally:
        os.close(root_fd)
    return scan


def _walk(dir_fd, prefix, config, include, exclude, reader, scan, sink):
    try:
        entries = sorted(os.scandir(dir_fd), key=lambda e: e.name)
    except OSError:
        scan.leave_out(prefix or "./", "unreadable")
        return
    for entry in entries:
        rel = prefix + entry.name
        try:
            st = os.stat(entry.name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            scan.leave_out(rel, "unreadable")
            continue
        if stat.S_ISDIR(st.st_mode):
            if exclude.match(rel, True):
                scan.leave_out(rel + "/", "excluded")
                continue
            if not reader.may(st, need_exec=True):
                scan.leave_out(rel + "/", "not-readable-by-participant")
                continue
            try:
                sub = _open_dir(entry.name, dir_fd)
            except OSError:
                scan.leave_out(rel + "/", "unreadable")  # also a folder swapped for a link meanwhile
                continue
            try:
                _walk(sub, rel + "/", config, include, exclude, reader, scan, sink)
            finally:
                os.close(sub)
            continue
        if exclude.match(rel, False):
            scan.leave_out(rel, "excluded", st.st_size if stat.S_ISREG(st.st_mode) else None)
            continue
        if include is not None and not include.match(rel, False) and not include.match_within(rel):
            scan.leave_out(rel, "not-included", st.st_size if stat.S_ISREG(st.st_mode) else None)
            continue
        if stat.S_ISLNK(st.st_mode):
            if len(scan.files) >= config["max_files"]:
                scan.leave_out(rel, "too-many-files")
                continue
            try:
                target = os.readlink(entry.name, dir_fd=dir_fd)
            except OSError:
                scan.leave_out(rel, "unreadable")
                continue
            scan.files.append({"path": rel, "type": "link", "target": target})
            continue
        if not stat.S_ISREG(st.st_mode):
            scan.leave_out(rel, "special")
            continue
        if st.st_size > config["max_file_bytes"]:
            scan.leave_out(rel, "too-large", st.st_size)
            continue
        if scan.bytes + st.st_size > config["max_total_bytes"]:
            scan.leave_out(rel, "over-total", st.st_size)
            continue
        if len(scan.files) >= config["max_files"]:
            scan.leave_out(rel, "too-many-files", st.st_size)
            continue
        if not reader.may(st):
            scan.leave_out(rel, "not-readable-by-participant", st.st_size)
            continue
        try:
            # O_NONBLOCK: a file swapped for a FIFO after the stat above must not hang the snapshot.
            fd = os.open(entry.name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError:
            scan.leave_out(rel, "unreadable", st.st_size)
            continue
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                scan.leave_out(rel, "changed", st.st_size)
                continue
            if opened.st_size > config["max_file_bytes"] or scan.bytes + opened.st_size > config["max_total_bytes"]:
                scan.leave_out(rel, "changed", opened.st_size)
                continue
            try:
                digest, size = sink.file(rel, fd, opened)
            except OSError:
                scan.leave_out(rel, "unreadable", st.st_size)
                continue
        finally:
            os.close(fd)
        if size > config["max_file_bytes"] or scan.bytes + size > config["max_total_bytes"]:
            scan.leave_out(rel, "changed", size)  # grew while it was read
            continue
        scan.bytes += size
        scan.files.append({"path": rel, "type": "file", "size": size, "sha256": digest,
                           "executable": bool(opened.st_mode & stat.S_IXUSR)})


# ---------------------------------------------------------------------------------------------
# Restoring


def _parents(paths):
    for p in paths:
        parts = p.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            yield "/".join(parts[:k])


def _covered_by(rel, left_out_dirs):
    return any(rel.startswith(d) for d in left_out_dirs)


def _plan(target, current):
    """The restore of tree `target` over a folder whose present state is tree `current`."""
    want = dict((f["path"], f) for f in target["files"])
    have = dict((f["path"], f) for f in current["files"])
    target_left = set(x["path"] for x in target["left_out"])
    target_left_dirs = [p for p in target_left if p.endswith("/")]
    current_left = dict((x["path"], x) for x in current["left_out"])
    current_left_dirs = [p for p in current_left if p.endswith("/")]
    write, delete, untouched = [], [], []
    unchanged = 0
    want_dirs = set(_parents(want))
    for rel, f in sorted(want.items()):
        if have.get(rel) == f:
            unchanged += 1
            continue
        if rel in current_left or _covered_by(rel, current_left_dirs):
            # Present now but not kept by the snapshot just taken: overwriting it could not be undone.
            untouched.append({"path": rel, "why": "present now but not kept (%s), so it is left as it is"
                              % current_left.get(rel, {}).get("reason", "inside a folder that is left out")})
            continue
        write.append(rel)
    for rel in sorted(have):
        if rel in want:
            continue
        if rel in target_left or _covered_by(rel, target_left_dirs):
            untouched.append({"path": rel, "why": "left out of the snapshot being restored, so it is left as it is"})
            continue
        delete.append(rel)
    # A path the snapshot needs as a folder, held now by a kept file or link, is deleted first (it is in
    # the snapshot just taken); one held by something that was not kept stops the restore before any change.
    for rel in sorted(want_dirs):
        if rel in have and rel not in delete:
            delete.append(rel)
        elif rel in current_left:
            raise SnapshotError("conflict", "%s is a folder in the snapshot, but now it is something that cannot "
                                            "be kept (%s). Move it away and restore again." % (
                                                rel, current_left[rel]["reason"]))
    # A path the snapshot needs as a file, held now by a folder: every file in that folder must go (be
    # deleted, having been kept); a folder that still holds something not kept stops the restore.
    deleting = set(delete)
    for rel in write:
        inside = rel + "/"
        blocking = [p for p in have if p.startswith(inside) and p not in deleting]
        blocking += [p for p in current_left if p.startswith(inside) or p == inside]
        if blocking:
            raise SnapshotError("conflict", "%s is a file in the snapshot, but now it is a folder that holds %s, "
                                            "which a restore would not bring back. Move the folder away and "
                                            "restore again." % (rel, blocking[0]))
    return {"write": write, "delete": sorted(deleting), "unchanged": unchanged, "untouched": untouched}


def _remove(root_fd, rel):
    """Removes a kept file or link (never follows a link). A folder in its place is left for the caller."""
    try:
        with _InFolderOf(root_fd, rel) as (parent, name):
            try:
                os.unlink(name, dir_fd=parent)
            except (FileNotFoundError, IsADirectoryError):
                pass
            except OSError as e:
                if e.errno not in (errno.EISDIR, errno.EPERM):
                    raise
    except (FileNotFoundError, SnapshotError):
        return


def _prune_empty_dirs(root_fd, removed, keep):
    """Removes folders that the deletions left empty, deepest first, except those the snapshot has."""
    dirs = sorted(set(_parents(removed)), key=lambda d: -d.count("/"))
    for d in dirs:
        if d in keep:
            continue
        try:
            with _InFolderOf(root_fd, d) as (parent, name):
                try:
                    os.rmdir(name, dir_fd=parent)
                except OSError:
                    pass  # not empty: it holds files that were not kept, and they stay
        except (FileNotFoundError, SnapshotError):
            continue


def _write_file(root_fd, rel, data, mode, owner):
    with _InFolderOf(root_fd, rel, create=True, owner=owner) as (parent, name):
        tmp = ".%s.restore-%d-%s" % (name[:100], os.getpid(), os.urandom(4).hex())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode, dir_fd=parent)
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, owner[0], owner[1])
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as e:
            os.unlink(tmp, dir_fd=parent)
            if e.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise SnapshotError("conflict", "%s is a file in the snapshot, but now a folder holds files that "
                                                "were not kept. Move the folder away and restore again." % rel)
            raise


def _write_link(root_fd, rel, target, owner):
    with _InFolderOf(root_fd, rel, create=True, owner=owner) as (parent, name):
        tmp = ".%s.restore-%d-%s" % (name[:100], os.getpid(), os.urandom(4).hex())
        os.symlink(target, tmp, dir_fd=parent)
        if owner is not None:
            os.chown(tmp, owner[0], owner[1], dir_fd=parent, follow_symlinks=False)
        os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_addressed(path, digest, expected_size, missing, changed):
    """The bytes of a file of the store named by its sha256 (an object or a tree); raises `missing` when it is
    not there and `changed` when its bytes no longer match the name (or expected_size)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise missing
    if sha256(data).hexdigest() != digest or (expected_size is not None and len(data) != expected_size):
        raise changed
    return data


def _looks_binary(head):
    return b"\0" in head


def _head_of_file(solution_dir, rel):
    try:
        root = _open_dir(solution_dir)
    except OSError:
        return b""
    try:
        with _InFolderOf(root, rel) as (parent, name):
            fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
            try:
                return os.read(fd, 8000)
            finally:
                os.close(fd)
    except (OSError, SnapshotError):
        return b""
    finally:
        os.close(root)


def _load_cache(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(path, cache, tmp_dir):
    tmp = os.path.join(tmp_dir, "cache-%d-%s" % (os.getpid(), os.urandom(4).hex()))
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cache, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache: the next snapshot reads every file again
