"""Files: atomic writes, synced appends, locks, and reading the runner's own JSON files where a damaged
one is set aside instead of stopping the session."""

import errno
import fcntl
import json
import os

from .common import RunnerError, iso, now_s


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


def append_locked(path, decide):
    """Appends one line to a hash-chained log of the runner (the score log, the session record): the one way
    both are written. Returns what decide returns as its result.

    The file is flocked for the whole read-check-write, so two writers never take the same index or the same
    previous hash. decide(data), given the file's bytes, returns (line, result, after): line (bytes without its
    newline, or None to write nothing), then, once the line is written and synced and still under the lock,
    after(fd) if it is not None. A torn last line (no newline: a writer was interrupted) is first ended with a
    newline, so that what follows is a line of its own; decide's scan counts the torn line as one. The file is
    synced before this returns, and so is its folder when this created it.
    """
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
        data = b"".join(chunks)
        line, result, after = decide(data)
        out = b"\n" if data and not data.endswith(b"\n") else b""
        if line is not None:
            out += line + b"\n"
        if out:
            write_all(fd, out)
            os.fsync(fd)
        if line is not None and after is not None:
            after(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(os.path.dirname(path) or ".")
    return result


def write_atomic(path, data, mode=0o644, sync=True):
    """Replaces path with data so that a crash leaves either the old or the new file, never a mix.

    sync=False is for caches that can be rebuilt (the status checkpoint): no fsync, still atomic.
    """
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(
        directory, ".%s.tmp-%d-%s" % (os.path.basename(path), os.getpid(), os.urandom(4).hex())
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(directory)


def write_json_atomic(path, obj, mode=0o644, sync=True):
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"), mode, sync)


def read_json(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def read_json_if_exists(path):
    try:
        return read_json(path)
    except FileNotFoundError:
        return None


class Damaged(object):
    """What read_state_file found wrong with a file it set aside."""

    def __init__(self, path, moved_to, reason):
        self.path = path
        self.moved_to = moved_to
        self.reason = reason


def set_aside(path, reason, on_damaged=None):
    """Renames a damaged file (or a folder where a file belongs) to PATH.damaged-<time>, keeping it as
    evidence; returns where it went (None if it could not be moved)."""
    stamp = iso(now_s()).replace(":", "").replace("-", "")
    target = "%s.damaged-%s-%s" % (path, stamp, os.urandom(2).hex())
    try:
        os.rename(path, target)
    except OSError:
        target = None
    if on_damaged is not None:
        on_damaged(Damaged(path, target, reason))
    return target


def read_state_file(path, on_damaged=None, check=None):
    """Reads one of the runner's own JSON files. Missing: None. Damaged (truncated, not JSON, not UTF-8, not
    what `check` accepts, a folder): set aside with set_aside, reported through on_damaged, then None.

    A damaged job file must never block the session: whoever reads it next recovers from what is left.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        set_aside(path, "a folder stands where a file belongs", on_damaged)
        return None
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        set_aside(path, "not UTF-8 text", on_damaged)
        return None
    except (ValueError, RecursionError) as e:
        set_aside(path, "not valid JSON (%s)" % (str(e)[:200] or "nested too deeply"), on_damaged)
        return None
    problem = check(obj) if check is not None else None
    if problem:
        set_aside(path, problem, on_damaged)
        return None
    return obj


def append_line_synced(path, line, sync=True):
    """Appends one line with a single write and (unless sync=False) fsyncs it (for the events log)."""
    existed = os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_all(fd, line.encode("utf-8"))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if not existed:
        fsync_dir(os.path.dirname(path))


def make_dirs(path, mode=0o755):
    os.makedirs(path, mode=mode, exist_ok=True)


def _open_lock_file(path, on_damaged=None):
    """Opens a lock file; a folder (or anything but a file) in its place is set aside and replaced."""
    for attempt in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except IsADirectoryError:
            fd = None
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = None  # a symbolic link where the lock belongs
        if fd is not None:
            return fd
        if attempt == 0:
            moved = set_aside(path, "a folder or link stands where the lock file belongs", on_damaged)
            if moved is None:
                break
    raise RunnerError("integrity", "%s is not a file (a folder or link stands in its place) and could not be "
                                   "moved aside. Remove it (it only serialises requests) and try again." % path)


class FileLock(object):
    """A blocking exclusive flock, held for a short read-modify-write of session state."""

    def __init__(self, path, on_damaged=None):
        self.path = path
        self.fd = None
        self.on_damaged = on_damaged

    def __enter__(self):
        self.fd = _open_lock_file(self.path, self.on_damaged)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None
        return False


def try_lock(path, on_damaged=None):
    """Takes an exclusive flock without waiting; returns the fd holding it, or None when taken."""
    fd = _open_lock_file(path, on_damaged)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


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


def read_from(path, position, size):
    try:
        with open(path, "rb") as f:
            f.seek(position)
            return f.read(size)
    except FileNotFoundError:
        return b""


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
