"""The command line: parsing, the protected-mode checks, running one command, and errors as the protocol
says (a message saying what to do, an exit code, and with --json an {"error": ...} line)."""

import os
import sys

from . import RUNNER_VERSION
from .common import EXIT_CODES, PROTECTED_HOME, LazyModule, RunnerError, error_object
from .home import Context, resolve_home
from .output import TerminalOutput
from .protect import check_privileged_call, privileged_call, sudo_caller

traceback = LazyModule("traceback")


# Commands that take no option but --json: read without argparse (see quick_args).
QUICK_COMMANDS = frozenset(("status", "start", "instructions", "pause", "resume", "verify", "records",
                            "measure-start", "serve"))


class Arguments(object):
    """The parsed command line, with the attributes argparse gives a command that takes no options."""

    def __init__(self, command, home, as_json):
        self.command = command
        self.home = home
        self.json = as_json
        self.json_global = False
        self.version = False


def quick_args(argv):
    """The arguments when argv is [--home HOME] [--json] COMMAND [--json] for a command of QUICK_COMMANDS
    (what the extension and most scripts run); None for anything else, which argparse reads."""
    home = None
    as_json = False
    command = None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--json" and not as_json:
            as_json = True
        elif token == "--home" and command is None and home is None and i + 1 < len(argv) and argv[i + 1] and \
                not argv[i + 1].startswith("-"):
            home = argv[i + 1]
            i += 1
        elif command is None and token in QUICK_COMMANDS:
            command = token
        else:
            return None
        i += 1
    return Arguments(command, home, as_json) if command is not None else None


def command_function(name):
    """The function of a command, importing only the module it lives in."""
    if name in ("export", "import-metr-csv"):
        from . import metr

        return {"export": metr.cmd_export, "import-metr-csv": metr.cmd_import_metr_csv}[name]
    if name == "_run-job":
        return cmd_run_job
    if name == "status":
        from .status import cmd_status

        return cmd_status
    if name in PARTICIPANT_COMMANDS:
        from . import participant

        return getattr(participant, PARTICIPANT_COMMANDS[name])
    if name in ("submit", "aggregate"):
        from . import endscoring

        return {"submit": endscoring.cmd_submit, "aggregate": endscoring.cmd_aggregate}[name]
    if name == "hidden":
        from . import hidden

        return hidden.cmd_hidden
    if name in ("extend", "infrastructure-pause"):
        from . import grants

        return {"extend": grants.cmd_extend, "infrastructure-pause": grants.cmd_infrastructure_pause}[name]
    from . import commands

    return {
        "setup": commands.cmd_setup, "start": commands.cmd_start,
        "instructions": commands.cmd_instructions, "score": commands.cmd_score, "attach": commands.cmd_attach,
        "log": commands.cmd_log, "pause": commands.cmd_pause, "resume": commands.cmd_resume,
        "end": commands.cmd_end, "verify": commands.cmd_verify,
    }[name]


PARTICIPANT_COMMANDS = {"note": "cmd_note", "records": "cmd_records", "confirm-rules": "cmd_confirm_rules",
                        "give-up": "cmd_give_up", "answer": "cmd_answer", "snapshot": "cmd_snapshot",
                        "measure-start": "cmd_measure_start"}
COMMAND_NAMES = ("setup", "status", "start", "instructions", "score", "attach", "log", "pause", "resume", "end",
                 "verify", "export", "import-metr-csv", "extend", "infrastructure-pause", "hidden", "serve", "submit",
                 "aggregate", "_run-job") + tuple(PARTICIPANT_COMMANDS)


def cmd_run_job(ctx, args):
    from .scoring import run_job

    return run_job(ctx, args.job_id, args.lock_fd)


def terminal_follow(ctx, job, offset, then=None):
    from .follow import follow_job

    code = follow_job(ctx, job, offset)
    return then(code) if then is not None else code


def report_error(err, as_json, out=None):
    out = out or TerminalOutput()
    if as_json:
        out.emit({"error": error_object(err)})
    else:
        out.error_text("runner: %s\n" % err.message)
    return EXIT_CODES[err.code]


def os_error(err):
    """A clear error for a file the runner could not read or write (instead of a traceback)."""
    where = getattr(err, "filename", None)
    return RunnerError("environment", "The runner could not use %s (%s). Nothing more was recorded. Check that it "
                                      "exists, has the right kind (file or folder) and can be written by the user "
                                      "the runner runs as (uid %d), or ask the organiser."
                       % (where or "a file of its state", err.strerror or err, os.geteuid()))


def run_command(ctx, name, args):
    """Runs one command in ctx; returns its exit code, reporting every failure as a protocol error."""
    try:
        return command_function(name)(ctx, args) or 0
    except RunnerError as e:
        return report_error(e, ctx.as_json, ctx.out)
    except BrokenPipeError:
        return EXIT_CODES["internal"]  # the reader went away; nothing was half-recorded
    except RecursionError:
        return report_error(RunnerError("usage", "An input is nested too deeply to be read."), ctx.as_json, ctx.out)
    except OSError as e:
        return report_error(os_error(e), ctx.as_json, ctx.out)
    except KeyboardInterrupt:
        return report_error(RunnerError("internal", "Interrupted."), ctx.as_json, ctx.out)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return report_error(RunnerError("internal", "The runner failed: %s: %s" % (type(e).__name__, e)),
                            ctx.as_json, ctx.out)


def main(argv):
    try:
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")
    except AttributeError:
        pass
    as_json = "--json" in argv
    args = quick_args(argv)
    if args is None:
        from .arguments import UsageError, build_parser, command_named

        try:
            named = command_named(argv)
            quick = named in COMMAND_NAMES and "-h" not in argv and "--help" not in argv
            args = build_parser(named if quick else None).parse_args(argv)
        except UsageError as e:
            return report_error(RunnerError("usage", str(e)), as_json)
    if args.version:
        TerminalOutput().line(RUNNER_VERSION)
        return 0
    as_json = args.json_global or getattr(args, "json", False)
    if not args.command:
        return report_error(RunnerError("usage", "Name a command, e.g. `runner status` (see --help)."), as_json)
    privileged = privileged_call()
    caller = sudo_caller() if privileged else None
    if privileged:
        try:
            home = check_privileged_call(args, caller=caller)
        except RunnerError as e:
            if e.code == "refused":
                try:  # the organiser's audit trail keeps attempts to steer the root runner elsewhere
                    Context(PROTECTED_HOME, as_json).record_event("refused", action=args.command, reason=e.message,
                                                                  caller=caller)
                except Exception:
                    pass
            return report_error(e, as_json)
    else:
        home = resolve_home(args.home)
    if args.command == "serve":
        from .serve import serve

        return serve(home, privileged, caller)
    ctx = Context(home, as_json, TerminalOutput())
    ctx.follow_handler = terminal_follow
    return run_command(ctx, args.command, args)


def run_and_exit(argv):
    """Runs main and leaves at once: os._exit skips the interpreter's clean-up of every module once the
    output is flushed (the runner closes and syncs its files itself)."""
    code = main(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)
