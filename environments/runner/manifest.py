"""Environment manifests, checked against the contract (contract.json, generated from src/core/manifest.ts;
test/unit/contract.unit.test.ts gives both sides the same manifests and expects the same verdicts)."""

import json
import os
import re

from . import RUNNER_VERSION
from .common import RunnerError, package_data, sha256

ENV_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CHECKED_FILE = "manifest-checked.json"


class ManifestProblem(Exception):
    pass


def validate_manifest(raw):
    """Returns the manifest with defaults filled in; raises ManifestProblem naming the bad field.

    The rules are the contract's (contract.json, generated from src/core/manifest.ts), plus the one rule JSON
    Schema cannot say: the two scores that normalise must differ."""
    from .contract import Problem, checker

    try:
        m = checker("manifest", normalize=True)(raw)
    except Problem as e:
        raise ManifestProblem(str(e))
    if m["scoring"]["starting_score"] == m["scoring"]["reference_score"]:
        raise ManifestProblem("scoring: starting_score and reference_score must differ "
                              "(the normalised score divides by their difference)")
    return _participant_fields(m)


def _participant_fields(m):
    """What the participant's features read, in the form they read it: the solution's path and its snapshot
    settings apart, and the organiser's rules, questions and reasons (None where the manifest has none)."""
    from . import records, snapshots

    try:
        solution = m["solution"]
        if isinstance(solution, dict):
            m["solution"] = solution["path"]
            m["snapshot"] = snapshots.validate_config(solution.get("snapshot"), "solution.snapshot")
        else:
            m["snapshot"] = snapshots.validate_config(None)
        for key, check in (("rules", records.validate_rules), ("end_questions", records.validate_questions),
                           ("give_up_reasons", records.validate_reasons)):
            m[key] = check(m[key], key) if key in m else None
    except ValueError as e:
        raise ManifestProblem(str(e))
    m.setdefault("away_after_minutes", None)
    scoring = m["scoring"]
    scoring.setdefault("submit", None)
    scoring.setdefault("aggregate_command", None)
    if scoring["submit"] is not None and scoring["submit"].get("pattern") is not None:
        try:
            re.compile(scoring["submit"]["pattern"])
        except (re.error, RecursionError) as e:
            raise ManifestProblem("scoring.submit.pattern: not a regular expression (%s)" % e)
    return m


def _reject_constant(name):
    raise ValueError("%s is not allowed in JSON" % name)


# The manifests this process has checked: (path, key) -> the checked manifest as JSON text.
_checked = {}
# The records (cache path, key) this process has read or written.
_recorded = set()
_contract_digest = []


def _check_key(data):
    """What a checked manifest depends on: its bytes, the contract and the runner that checked it."""
    if not _contract_digest:
        _contract_digest.append(sha256(package_data("contract.json")).hexdigest())
    return "%s %s %s" % (RUNNER_VERSION, _contract_digest[0], sha256(data).hexdigest())


def _read_checked(cache_path, key):
    """The checked manifest as JSON text from the runner's record of its last check, when the key matches."""
    try:
        with open(cache_path, "rb") as f:
            record = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # missing or damaged: the manifest is checked again and the record rewritten
    if isinstance(record, dict) and record.get("key") == key and isinstance(record.get("manifest"), str):
        return record["manifest"]
    return None


def _write_checked(cache_path, key, text):
    """Records a check's result; whether it was written."""
    from .files import write_atomic

    try:
        # A record that can be rebuilt: not synced.
        write_atomic(cache_path, json.dumps({"key": key, "manifest": text}).encode("utf-8"), sync=False)
    except OSError:
        return False  # a state folder that cannot be written is reported by the command that writes to it
    return True


def checked_manifest(manifest_path, data, cache_path=None):
    """The manifest from manifest.json's bytes, checked and with defaults filled in; raises ManifestProblem,
    ValueError or UnicodeDecodeError (not JSON) or RecursionError.

    The check compiles the contract's rules, the largest part of a command's start-up: its result is kept
    (in this process, and in cache_path in the runner's state) under the manifest's hash, the contract's and
    the runner's version, so that it is only done again when one of them changes."""
    key = _check_key(data)
    text = _checked.get((manifest_path, key))
    if text is None and cache_path is not None:
        text = _read_checked(cache_path, key)
        if text is not None:
            _recorded.add((cache_path, key))
    if text is None:
        raw = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        text = json.dumps(validate_manifest(raw), sort_keys=True)
    _checked[(manifest_path, key)] = text
    if cache_path is not None and (cache_path, key) not in _recorded and _write_checked(cache_path, key, text):
        _recorded.add((cache_path, key))
    return json.loads(text)  # a copy of its own for each caller


def load_environment(environments_dir, env_id, cache_dir=None):
    """Loads and checks <environments_dir>/<env_id>; raises an "environment" error saying what to fix.

    cache_dir (the runner's state folder) keeps the last check's result (see checked_manifest)."""
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
        with open(manifest_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RunnerError("environment", "%s is missing. Every environment folder needs a manifest.json; "
                                         "reinstall the environment." % manifest_path)
    try:
        manifest = checked_manifest(manifest_path, data,
                                    os.path.join(cache_dir, CHECKED_FILE) if cache_dir is not None else None)
    except (ValueError, UnicodeDecodeError) as e:
        raise RunnerError("environment", "%s is not valid JSON (%s). Fix the file and try again."
                          % (manifest_path, e))
    except RecursionError:
        raise RunnerError("environment", "%s is nested too deeply to be an environment manifest. Fix the file "
                                         "and try again." % manifest_path)
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
