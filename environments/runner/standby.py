"""A job process made ahead of time by `serve`: forked while the channel is idle, set up (its own session, no
terminal, none of the channel's files) and waiting for a job on a socket. Score now hands it the job's id with
the score lock and runner.log (passed as file descriptors), so that the fork and the new process's first steps
are not paid while the participant waits. Each is used once; `serve` makes the next when it is idle again.

Nothing about a job changes: the process that runs it is a fork of the runner in a session of its own, holding
the score lock until its entry is written, as a job forked at the click is. A standby that is gone (killed,
or the machine short of memory) is skipped and the job is forked at once; one whose channel closes (end of
file on its socket, also when `serve` is killed) exits without doing anything.
"""

import array
import os
import socket

from .common import EXIT_CODES
from .jobs import become_job, detach, fork_frozen, standbys

JOB_ID_BYTES = 64  # a job id is far shorter


class Standby(object):
    def __init__(self, make_context, run_job):
        """Forks the waiting process; make_context() gives the job its Context when the job comes (the home's
        files are read then, not now)."""
        # Sequenced packets: the job's id arrives as the one message it was sent as, never in parts.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            done_r, done_w = os.pipe()
        except OSError:
            ours.close()
            theirs.close()
            raise
        try:
            pid = fork_frozen()
        except OSError:
            for fd in (done_r, done_w):
                os.close(fd)
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            try:
                _wait_for_job(theirs.fileno(), done_w, make_context, run_job)
            finally:
                os._exit(EXIT_CODES["internal"])
        theirs.close()
        os.close(done_w)
        self.pid = pid
        self.socket = ours
        self.done_r = done_r

    def hand_over(self, job_id, lock_fd, log_fd):
        """Gives the job to the waiting process: (its pid, the read end of its done pipe), or None when it is
        gone (nothing was handed over)."""
        try:
            fds = array.array("i", [lock_fd, log_fd])
            self.socket.sendmsg([job_id.encode("ascii")], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError:
            self.close()
            return None
        self.socket.close()
        return self.pid, self.done_r

    def close(self):
        """Ends the waiting process (end of file on its socket) and lets go of its done pipe."""
        self.socket.close()
        try:
            os.close(self.done_r)
        except OSError:
            pass


def _wait_for_job(sock_fd, done_fd, make_context, run_job):
    os.setsid()
    detach((sock_fd, done_fd))
    sock = socket.socket(fileno=sock_fd)
    fd_size = array.array("i").itemsize
    try:
        data, ancillary, _, _ = sock.recvmsg(JOB_ID_BYTES, socket.CMSG_SPACE(2 * fd_size))
    except OSError:
        os._exit(0)
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fd_size])
    sock.close()
    if not data or len(fds) != 2:
        os._exit(0)  # the channel closed (or sent something else): no job
    lock_fd, log_fd = fds
    become_job(make_context(), data.decode("ascii"), lock_fd, log_fd, done_fd, run_job)


def keep_one_ready(make_context, run_job):
    """Makes a standby unless one is waiting; a fork that fails only means the next job forks at its click."""
    if standbys:
        return
    try:
        standbys.append(Standby(make_context, run_job))
    except OSError:
        pass


def drop():
    """Ends the waiting standby (the channel is closing)."""
    while standbys:
        standbys.pop().close()
