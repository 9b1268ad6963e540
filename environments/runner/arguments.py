"""The runner's command line as argparse reads it: every command and its options, and --help. Commands that
take no options but --json (status, serve, ...) are read without it (cli.quick_args): argparse and this
parser are a large part of such a command's start-up."""

import argparse
import os
import sys

from . import RUNNER_VERSION


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


class _Ignored(object):
    """Stands in for the sub-parser of a command that build_parser(only=...) leaves out."""

    def add_argument(self, *args, **kwargs):
        return None


def build_parser(only=None):
    """The command line. With `only`, just that command's arguments are set up: every command pays for
    the parser it builds, and most of that cost is one sub-parser per command."""
    parser = Parser(prog="runner", description="RE-Bench session runner %s" % RUNNER_VERSION,
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
    request_help = "the request as one JSON object (the same as serve's args); --stdin reads it from stdin"
    p = command("note", "add a note (Markdown) to the session record")
    p.add_argument("--text", help="the note")
    p.add_argument("--request", help=request_help + ", e.g. {\"text\": ...}")
    p.add_argument("--stdin", action="store_true", help="read the request from stdin")
    command("records", "the session record: notes, rules confirmed, restores, giving up, answers")
    p = command("confirm-rules", "record that the participant confirmed the study's rules")
    p.add_argument("--request", help=request_help + ", e.g. {\"rules\": [...]} (the rules as shown)")
    p.add_argument("--stdin", action="store_true", help="read the request from stdin")
    p = command("give-up", "give up with a reason, then end the session")
    p.add_argument("--reason", default="", help="why (free text)")
    p.add_argument("--choice", help="one of the organiser's reasons")
    p.add_argument("--request", help=request_help + ", e.g. {\"reason\": ..., \"choice\": ...}")
    p.add_argument("--follow", action="store_true", help="stream a final scoring job")
    p = command("answer", "record the answers to the end questions (after the session ended)")
    p.add_argument("--request", help=request_help + ", e.g. {\"answers\": {...}} or {\"skipped\": true}")
    p.add_argument("--stdin", action="store_true", help="read the request from stdin")
    p = command("submit", "submit the answer (end scoring): it is scored once and the session ends")
    p.add_argument("--answer", help="the answer")
    p.add_argument("--request", help=request_help + ", e.g. {\"answer\": ...}")
    p.add_argument("--stdin", action="store_true", help="read the request from stdin")
    p.add_argument("--yes", action="store_true", help="confirm")
    p.add_argument("--follow", action="store_true", help="stream the scoring job")
    command("aggregate", "record the aggregate of the whole score log once the session has ended")
    command("measure-start", "score the starting solution once on this machine (unprotected, before the start)")
    p = command("snapshot", "compare, show, restore or export a kept solution")
    p.add_argument("action", choices=("changes", "show", "plan", "restore", "export"))
    p.add_argument("snapshot_id")
    p.add_argument("--against", help="changes: another snapshot id (default: the solution folder now)")
    p.add_argument("--path", help="show: the file to print")
    p.add_argument("--yes", action="store_true", help="restore: confirm")
    p = command("extend", "give the participant N more minutes, on the record (administrator only)")
    p.add_argument("--minutes", required=True, help="minutes added to the deadline (more than 0, at most 1440)")
    p.add_argument("--reason", required=True, help="why: recorded in the session's events and shown to the participant")
    p = command("infrastructure-pause", "count a stretch when the infrastructure failed as paused (administrator only)")
    p.add_argument("--from", required=True, dest="from_time", help="start of the outage, ISO 8601 with its zone")
    p.add_argument("--to", required=True, dest="to_time", help="end of the outage, ISO 8601 with its zone (not in the future)")
    p.add_argument("--reason", required=True, help="why: recorded in the session's events and shown to the participant")
    command("hidden", "the hidden scores, for the organiser (administrator only in protected mode)")
    command("serve", "answer JSON requests on stdin, one a line, until stdin closes (for the extension)")
    p = command("_run-job", None)
    p.add_argument("job_id")
    p.add_argument("--lock-fd", type=int)
    return parser
