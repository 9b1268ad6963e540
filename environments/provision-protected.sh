#!/usr/bin/env bash
# Prepares a VM for a protected RE-Bench session. Run it as root, once per VM (running it again is safe).
#
#   provision-protected.sh --environment DIR --participant USER --scoring-user USER
#                          [--solution-dir DIR] [--runner PATH] [--force]
#                          [--solution-user USER] [--scorer-secret FILE]
#
# It installs the runner as /usr/local/bin/rebench-runner and the environment under
# /etc/rebench/environments/<id>, both owned by root; writes /etc/rebench/runner.json in protected mode;
# creates the state folder /etc/rebench/state, which only root can write; copies the starting solution
# into the participant's solution folder (never over existing work); creates the scoring user if
# needed; and writes the one sudo rule the participant gets: /usr/local/bin/rebench-runner as root.
#
# Files the participant must not read (hidden test data, reference answers) go in a `protected/`
# folder of the environment: it is installed as root:<scoring user's group> 0750 (files 0640), so
# only root and the scorer, which runs as the scoring user, can read it. See environments/README.md,
# "Protected mode".
#
# A scorer that runs the participant's code (reservoir-scan) runs it as a third user, the solution user,
# who cannot read protected/, the state folder or the scorer's secret, nor write the result file: the
# script creates that user, writes /etc/rebench/sandbox.json naming it, and adds one sudo rule that lets
# the scoring user start Python as the solution user. It also keeps a scorer secret in
# /etc/rebench/scorer-secret (readable by the scoring user only) that scorers derive hidden seeds from.
set -euo pipefail

PROG=$(basename "$0")
HOME_DIR=/etc/rebench
RUNNER_DEST=/usr/local/bin/rebench-runner
SUDOERS_FILE=/etc/sudoers.d/rebench

die() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  exit 1
}
say() {
  printf '%s: %s\n' "$PROG" "$1"
}
usage() {
  cat >&2 <<EOF
usage: $PROG --environment DIR --participant USER --scoring-user USER
       [--solution-dir DIR] [--runner PATH] [--force]
  --environment DIR    the environment folder to install (holds manifest.json)
  --participant USER   the participant's login user (gets the one sudo rule)
  --scoring-user USER  the user the scorer runs as; created when missing (no login, no home)
  --solution-dir DIR   the participant's solution folder (default: ~USER/solution)
  --runner PATH        the runner to install (default: runner.pyz beside this script, built by
                       scripts/build-runner.py)
  --force              replace the environment even though a session has started with it
  --solution-user USER the user the participant's code runs as when a scorer runs it (default
                       rebench-solution); created when missing (no login, no home)
  --scorer-secret FILE the scorer secret to install (give every VM of one evaluation the same one, so
                       that scorers use the same hidden seeds everywhere); default: keep the VM's, or
                       make a random one
EOF
  if [ -n "${1:-}" ]; then printf '%s: error: %s\n' "$PROG" "$1" >&2; fi
  exit 2
}

ENV_SRC=""
PARTICIPANT=""
SCORER=""
SOLUTION_DIR=""
RUNNER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/runner.pyz"
FORCE=0
SOLUTION_USER=rebench-solution
SECRET_SRC=""
ORIGINAL_ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --environment|--participant|--scoring-user|--solution-dir|--runner)
      [ $# -ge 2 ] && [ -n "$2" ] || usage "$1 needs a value"
      case "$1" in
        --environment) ENV_SRC=$2 ;;
        --participant) PARTICIPANT=$2 ;;
        --scoring-user) SCORER=$2 ;;
        --solution-dir) SOLUTION_DIR=$2 ;;
        --runner) RUNNER_SRC=$2 ;;
      esac
      shift 2 ;;
    --environment=*) ENV_SRC=${1#*=}; shift ;;
    --participant=*) PARTICIPANT=${1#*=}; shift ;;
    --scoring-user=*) SCORER=${1#*=}; shift ;;
    --solution-dir=*) SOLUTION_DIR=${1#*=}; shift ;;
    --runner=*) RUNNER_SRC=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    --solution-user|--scorer-secret)
      [ $# -ge 2 ] && [ -n "$2" ] || usage "$1 needs a value"
      if [ "$1" = --solution-user ]; then SOLUTION_USER=$2; else SECRET_SRC=$2; fi
      shift 2 ;;
    -h|--help) usage ;;
    *) usage "unknown argument \"$1\"" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "this script sets up files owned by root, a system user and a sudo rule, so it must run as root. Run it again with sudo: sudo $0 ${ORIGINAL_ARGS[*]}"
[ -n "$ENV_SRC" ] || usage "--environment DIR is required (the environment folder to install)"
[ -n "$PARTICIPANT" ] || usage "--participant USER is required (the participant's login user)"
[ -n "$SCORER" ] || usage "--scoring-user USER is required (the user the scorer runs as, e.g. rebench-scorer)"

# --- checks before anything is changed ------------------------------------------------------------

# The system's interpreter first: the scorer runs it as the scoring user, who cannot reach a
# version manager's copy under root's home; a version manager's shim would also depend on variables
# that sudo removes.
PYTHON=""
for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
  [ -n "$candidate" ] && [ -x "$candidate" ] || continue
  resolved=$("$candidate" -c 'import sys; print(sys.executable if sys.version_info >= (3, 8) else "")' 2>/dev/null || true)
  if [ -n "$resolved" ]; then PYTHON=$resolved; break; fi
done
[ -n "$PYTHON" ] || die "no python3 of version 3.8 or newer was found (the runner needs one); install it (apt-get install python3)."
command -v visudo >/dev/null || die "sudo is not installed (visudo not found); the participant runs the runner through sudo (apt-get install sudo)."
command -v runuser >/dev/null || die "runuser (util-linux) is not installed; it is needed to check what the users can read."

[ -f "$RUNNER_SRC" ] || die "the runner $RUNNER_SRC does not exist; pass --runner PATH to runner.pyz (build it with: python3 scripts/build-runner.py)."
RUNNER_VERSION=$("$PYTHON" "$RUNNER_SRC" --version 2>/dev/null) || die "$RUNNER_SRC does not run as the runner ($PYTHON $RUNNER_SRC --version failed)."

[ -d "$ENV_SRC" ] || die "the environment folder $ENV_SRC does not exist."
ENV_SRC=$(cd "$ENV_SRC" && pwd)
[ -f "$ENV_SRC/manifest.json" ] || die "$ENV_SRC has no manifest.json, so it is not an environment folder."
ENV_ID=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$ENV_SRC/manifest.json" 2>/dev/null) \
  || die "cannot read the id from $ENV_SRC/manifest.json; check that it is valid JSON with an \"id\"."
[[ "$ENV_ID" =~ ^[a-z0-9][a-z0-9-]{0,63}$ ]] || die "the environment id \"$ENV_ID\" in $ENV_SRC/manifest.json is not valid (lowercase letters, digits and \"-\")."
SOLUTION_REL=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["solution"])' "$ENV_SRC/manifest.json" 2>/dev/null) \
  || die "$ENV_SRC/manifest.json names no \"solution\" folder."
[ -d "$ENV_SRC/$SOLUTION_REL" ] || die "the starting solution $ENV_SRC/$SOLUTION_REL does not exist."

valid_user_name() { [[ "$1" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; }
valid_user_name "$PARTICIPANT" || die "\"$PARTICIPANT\" is not a valid user name."
valid_user_name "$SCORER" || die "\"$SCORER\" is not a valid user name."
getent passwd "$PARTICIPANT" >/dev/null || die "the participant user \"$PARTICIPANT\" does not exist; create their login first."
[ "$(id -u "$PARTICIPANT")" -ne 0 ] || die "the participant must not be root."
[ "$SCORER" != "$PARTICIPANT" ] || die "the scoring user must differ from the participant, or the participant could write the scorer's result."
if getent passwd "$SCORER" >/dev/null; then
  [ "$(id -u "$SCORER")" -ne 0 ] || die "the scoring user must not be root."
  id -Gn "$PARTICIPANT" | tr ' ' '\n' | grep -qxF "$(id -gn "$SCORER")" \
    && die "the participant \"$PARTICIPANT\" is in the group $(id -gn "$SCORER") of the scoring user, so they could read the protected files. Pick another scoring user."
fi
valid_user_name "$SOLUTION_USER" || die "\"$SOLUTION_USER\" is not a valid user name."
[ "$SOLUTION_USER" != "$PARTICIPANT" ] && [ "$SOLUTION_USER" != "$SCORER" ] \
  || die "the solution user must differ from the participant and from the scoring user: it runs the participant's code with fewer rights than the scorer."
if getent passwd "$SOLUTION_USER" >/dev/null; then
  [ "$(id -u "$SOLUTION_USER")" -ne 0 ] || die "the solution user must not be root."
  if getent passwd "$SCORER" >/dev/null; then
    id -Gn "$SOLUTION_USER" | tr ' ' '\n' | grep -qxF "$(id -gn "$SCORER")" \
      && die "the solution user \"$SOLUTION_USER\" is in the group $(id -gn "$SCORER") of the scoring user, so the participant's code could read the protected files. Pick another solution user."
  fi
fi
if [ -n "$SECRET_SRC" ]; then
  [ -f "$SECRET_SRC" ] && [ "$(wc -c <"$SECRET_SRC")" -ge 16 ] || die "--scorer-secret $SECRET_SRC must be a file of at least 16 bytes."
fi
PARTICIPANT_HOME=$(getent passwd "$PARTICIPANT" | cut -d: -f6)
PARTICIPANT_GROUP=$(id -gn "$PARTICIPANT")
[ -n "$SOLUTION_DIR" ] || SOLUTION_DIR="$PARTICIPANT_HOME/solution"
case "$SOLUTION_DIR" in
  /*) ;;
  *) die "--solution-dir must be an absolute path, not \"$SOLUTION_DIR\"." ;;
esac
SOLUTION_DIR=${SOLUTION_DIR%/}

ENV_DEST="$HOME_DIR/environments/$ENV_ID"
# A session that has started keeps its environment and solution folder: changing them would change its rules.
if [ -f "$HOME_DIR/state/session.json" ] && [ "$FORCE" -ne 1 ]; then
  STARTED_ENV=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("environment", ""))' "$HOME_DIR/state/session.json" 2>/dev/null || echo "?")
  [ "$STARTED_ENV" = "$ENV_ID" ] || die "a session for \"$STARTED_ENV\" has started on this VM ($HOME_DIR/state/session.json); it cannot switch to \"$ENV_ID\". Archive and remove $HOME_DIR/state first, or pass --force."
  if [ -d "$ENV_DEST" ] && ! diff -rq -x __pycache__ -x .git "$ENV_SRC" "$ENV_DEST" >/dev/null 2>&1; then
    die "a session has started with the installed copy of \"$ENV_ID\", and $ENV_SRC differs from it. Replacing the scorer during a session changes its rules; pass --force to do it anyway."
  fi
fi

# --- the scoring user --------------------------------------------------------------------------------

if getent passwd "$SCORER" >/dev/null; then
  say "scoring user $SCORER exists (uid $(id -u "$SCORER"))"
else
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "RE-Bench scorer" "$SCORER"
  say "created the scoring user $SCORER (uid $(id -u "$SCORER"), no login shell, no home)"
fi
SCORER_GROUP=$(id -gn "$SCORER")
runuser -u "$SCORER" -- "$PYTHON" -c pass 2>/dev/null \
  || die "the scoring user $SCORER cannot run $PYTHON; install python3 where every user can run it."

# --- the solution user -------------------------------------------------------------------------------

if getent passwd "$SOLUTION_USER" >/dev/null; then
  say "solution user $SOLUTION_USER exists (uid $(id -u "$SOLUTION_USER"))"
else
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "RE-Bench participant code" "$SOLUTION_USER"
  say "created the solution user $SOLUTION_USER (uid $(id -u "$SOLUTION_USER"), no login shell, no home)"
fi

# --- the runner --------------------------------------------------------------------------------------

# The interpreter is fixed, and -I keeps Python from reading the caller's PYTHON* variables or user site.
# The runner is one archive (runner.pyz): its own first line is replaced, the archive after it is kept as is.
TMP_RUNNER=$(mktemp "$RUNNER_DEST.XXXXXX")
if head -c 2 "$RUNNER_SRC" | grep -q '^#!'; then
  { printf '#!%s -I\n' "$PYTHON"; tail -n +2 "$RUNNER_SRC"; } >"$TMP_RUNNER"
else
  { printf '#!%s -I\n' "$PYTHON"; cat "$RUNNER_SRC"; } >"$TMP_RUNNER"
fi
chown root:root "$TMP_RUNNER"
chmod 0755 "$TMP_RUNNER"
mv -f "$TMP_RUNNER" "$RUNNER_DEST"
say "installed the runner $RUNNER_VERSION as $RUNNER_DEST (root:root 0755, interpreter $PYTHON)"

# --- the environment ---------------------------------------------------------------------------------

install -d -o root -g root -m 0755 "$HOME_DIR" "$HOME_DIR/environments"
STAGE=$(mktemp -d "$HOME_DIR/environments/.$ENV_ID.new.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
(cd "$ENV_SRC" && tar --exclude=__pycache__ --exclude=.git -cf - .) | (cd "$STAGE" && tar --no-same-owner -xf -)
chown -R root:root "$STAGE"
# Everything readable by all (the instructions and the scorer, as in METR's setup), nothing writable but by root.
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f -perm /111 -exec chmod 0755 {} +
find "$STAGE" -type f ! -perm /111 -exec chmod 0644 {} +
if [ -d "$STAGE/protected" ]; then
  chgrp -R "$SCORER_GROUP" "$STAGE/protected"
  find "$STAGE/protected" -type d -exec chmod 0750 {} +
  find "$STAGE/protected" -type f -perm /111 -exec chmod 0750 {} +
  find "$STAGE/protected" -type f ! -perm /111 -exec chmod 0640 {} +
fi
chmod 0755 "$STAGE"
if [ -e "$ENV_DEST" ]; then
  OLD="$HOME_DIR/environments/.$ENV_ID.old.$$"
  mv "$ENV_DEST" "$OLD"
  mv "$STAGE" "$ENV_DEST"
  rm -rf "$OLD"
else
  mv "$STAGE" "$ENV_DEST"
fi
trap - EXIT
say "installed the environment $ENV_ID as $ENV_DEST (root:root, read-only for others)"
if [ -d "$ENV_DEST/protected" ]; then
  say "  its protected/ folder is root:$SCORER_GROUP 0750 (files 0640): only root and $SCORER can read it"
else
  say "  it has no protected/ folder: every file of it is readable by the participant"
fi

# --- state and configuration -------------------------------------------------------------------------

# 0711: nobody but root can list or write the state; the scorer can still reach the result folder the
# runner hands it for each job (state/jobs/<id>/result/, owned by the scoring user while the job runs).
install -d -o root -g root -m 0711 "$HOME_DIR/state"
chown root:root "$HOME_DIR/state"
chmod 0711 "$HOME_DIR/state"
say "state folder $HOME_DIR/state (root:root 0711): only root writes the session and the score log"
# The solution user may not even pass through it (its files are 0644: anyone who passes can read one by name).
if command -v setfacl >/dev/null; then
  setfacl -m "u:$SOLUTION_USER:---" "$HOME_DIR/state" \
    || die "setfacl could not keep $SOLUTION_USER out of $HOME_DIR/state (does the file system support ACLs?)."
  ! runuser -u "$SOLUTION_USER" -- test -x "$HOME_DIR/state" \
    || die "$SOLUTION_USER can still pass through $HOME_DIR/state after setfacl; check the file system's ACL support."
  say "  $SOLUTION_USER may not pass through it (ACL user:$SOLUTION_USER:---)"
else
  say "warning: setfacl is not installed (package acl), so $SOLUTION_USER, who runs the participant's code for scorers that run it, can read files of $HOME_DIR/state by name. Install acl and run this again."
fi

# The scorer secret: scorers derive hidden seeds from it. Kept across runs (a started session keeps its
# seeds) unless --scorer-secret gives one. Only root and the scoring user can read it.
SECRET="$HOME_DIR/scorer-secret"
if [ -n "$SECRET_SRC" ]; then
  install -o root -g "$SCORER_GROUP" -m 0640 "$SECRET_SRC" "$SECRET.new" && mv -f "$SECRET.new" "$SECRET"
  say "installed the scorer secret from $SECRET_SRC as $SECRET (root:$SCORER_GROUP 0640)"
elif [ ! -s "$SECRET" ]; then
  (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))' >"$SECRET.new") && mv -f "$SECRET.new" "$SECRET"
  say "made a random scorer secret $SECRET (root:$SCORER_GROUP 0640); pass --scorer-secret to use one secret on every VM"
fi
chown root:"$SCORER_GROUP" "$SECRET"
chmod 0640 "$SECRET"

# Who runs the participant's code when a scorer runs it (read by the scorer; see environments/README.md).
TMP_SANDBOX=$(mktemp "$HOME_DIR/.sandbox.json.XXXXXX")
"$PYTHON" - "$TMP_SANDBOX" "$SCORER" "$SOLUTION_USER" "$PYTHON" "$(command -v sudo)" <<'PY'
import json, sys
path, scorer, solution_user, python, sudo = sys.argv[1:]
with open(path, "w") as f:
    json.dump({"scoring_user": scorer, "solution_user": solution_user, "python": python, "sudo": sudo}, f, indent=2,
              sort_keys=True)
    f.write("\n")
PY
chown root:root "$TMP_SANDBOX"
chmod 0644 "$TMP_SANDBOX"
mv -f "$TMP_SANDBOX" "$HOME_DIR/sandbox.json"
say "wrote $HOME_DIR/sandbox.json: a scorer running as $SCORER starts the participant's code as $SOLUTION_USER"

TMP_CONFIG=$(mktemp "$HOME_DIR/.runner.json.XXXXXX")
"$PYTHON" - "$TMP_CONFIG" "$ENV_ID" "$HOME_DIR" "$SOLUTION_DIR" "$SCORER" <<'PY'
import json, sys
path, env_id, home, solution_dir, scorer = sys.argv[1:]
config = {
    "mode": "protected",
    "environment": env_id,
    "environments_dir": home + "/environments",
    "state_dir": home + "/state",
    "solution_dir": solution_dir,
    "scoring_user": scorer,
}
with open(path, "w") as f:
    json.dump(config, f, indent=2, sort_keys=True)
    f.write("\n")
PY
chown root:root "$TMP_CONFIG"
chmod 0644 "$TMP_CONFIG"
mv -f "$TMP_CONFIG" "$HOME_DIR/runner.json"
say "wrote $HOME_DIR/runner.json: protected mode, environment $ENV_ID, solution folder $SOLUTION_DIR, scoring user $SCORER"

# --- the participant's solution folder ---------------------------------------------------------------

if [ -e "$SOLUTION_DIR" ] || [ -L "$SOLUTION_DIR" ]; then
  [ -d "$SOLUTION_DIR" ] && [ ! -L "$SOLUTION_DIR" ] || die "$SOLUTION_DIR exists but is not a folder; move it away or pass another --solution-dir."
  say "solution folder $SOLUTION_DIR exists: left as it is (the participant's work is never overwritten)"
else
  PARENT=$(dirname "$SOLUTION_DIR")
  [ -d "$PARENT" ] || install -d -o "$PARTICIPANT" -g "$PARTICIPANT_GROUP" -m 0755 "$PARENT"
  TMP_SOLUTION=$(mktemp -d "$PARENT/.solution.XXXXXX")
  cp -R "$ENV_SRC/$SOLUTION_REL/." "$TMP_SOLUTION/"
  find "$TMP_SOLUTION" -name __pycache__ -prune -exec rm -rf {} +
  chown -R "$PARTICIPANT:$PARTICIPANT_GROUP" "$TMP_SOLUTION"
  chmod -R u+rwX,go+rX,go-w "$TMP_SOLUTION"
  mv "$TMP_SOLUTION" "$SOLUTION_DIR"
  say "copied the starting solution to $SOLUTION_DIR (owned by $PARTICIPANT)"
fi
# The scorer reads the solution as the scoring user: every folder above it must let others pass.
if ! runuser -u "$SCORER" -- test -r "$SOLUTION_DIR" -a -x "$SOLUTION_DIR"; then
  dir=$SOLUTION_DIR
  while [ "$dir" != "/" ]; do
    dir=$(dirname "$dir")
    if ! runuser -u "$SCORER" -- test -x "$dir"; then
      chmod o+x "$dir"
      say "allowed others to pass through $dir (o+x, no listing), so that $SCORER can reach the solution"
    fi
  done
  runuser -u "$SCORER" -- test -r "$SOLUTION_DIR" -a -x "$SOLUTION_DIR" \
    || die "the scoring user $SCORER cannot read $SOLUTION_DIR; give others read access to it (chmod o+rX) or pick another --solution-dir."
fi

# --- the sudo rule -----------------------------------------------------------------------------------

grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers\.d' /etc/sudoers \
  || die "/etc/sudoers does not include /etc/sudoers.d (no \"@includedir /etc/sudoers.d\" line), so the rule would have no effect. Add that line with visudo and run this again."
# sudo skips files in sudoers.d whose names hold a dot, so the unchecked draft is never in effect.
TMP_SUDOERS=$(mktemp /etc/sudoers.d/.rebench.XXXXXX)
cat >"$TMP_SUDOERS" <<EOF
# Written by provision-protected.sh. The participant may run the protected runner as root (any
# arguments: the runner itself refuses any that would point it elsewhere), and nothing else.
Defaults!$RUNNER_DEST !requiretty
$PARTICIPANT ALL=(root) NOPASSWD: $RUNNER_DEST
EOF
chown root:root "$TMP_SUDOERS"
chmod 0440 "$TMP_SUDOERS"
if ! CHECK=$(visudo -cf "$TMP_SUDOERS" 2>&1); then
  rm -f "$TMP_SUDOERS"
  die "the sudo rule did not pass visudo -cf: $CHECK"
fi
mv -f "$TMP_SUDOERS" "$SUDOERS_FILE"
visudo -c >/dev/null 2>&1 || die "sudo's configuration as a whole does not pass visudo -c after adding $SUDOERS_FILE; check it with: visudo -c"
say "wrote $SUDOERS_FILE (root 0440, checked by visudo): $PARTICIPANT may run $RUNNER_DEST as root, nothing else"

# The scorer's rule, in a file of its own: it may start Python as the solution user, who has fewer rights
# than the scorer, to run the participant's code; no pty, so that the child's pipes are the scorer's own.
TMP_SUDOERS=$(mktemp /etc/sudoers.d/.rebench-solution.XXXXXX)
cat >"$TMP_SUDOERS" <<EOF
# Written by provision-protected.sh. The scorer may start Python as the solution user to run the
# participant's code with fewer rights than its own; nobody else gets anything from this file.
Defaults:$SCORER !requiretty, !use_pty
$SCORER ALL=($SOLUTION_USER) NOPASSWD: $PYTHON
EOF
chown root:root "$TMP_SUDOERS"
chmod 0440 "$TMP_SUDOERS"
if ! CHECK=$(visudo -cf "$TMP_SUDOERS" 2>&1); then
  rm -f "$TMP_SUDOERS"
  die "the scorer's sudo rule did not pass visudo -cf: $CHECK"
fi
mv -f "$TMP_SUDOERS" "$SUDOERS_FILE-solution"
visudo -c >/dev/null 2>&1 || die "sudo's configuration as a whole does not pass visudo -c after adding $SUDOERS_FILE-solution; check it with: visudo -c"
say "wrote $SUDOERS_FILE-solution (root 0440, checked by visudo): $SCORER may start $PYTHON as $SOLUTION_USER, nothing else"

# --- check it from the participant's side ------------------------------------------------------------

if ! STATUS=$(runuser -u "$PARTICIPANT" -- sudo -n "$RUNNER_DEST" status --json 2>&1); then
  die "the participant cannot run the runner through sudo: $STATUS"
fi
"$PYTHON" -c 'import json, sys
s = json.loads(sys.argv[1])
assert s["mode"] == "protected", s["mode"]
print("%s: checked as %s: sudo -n %s status says mode %s, environment %s, session %s" % (
    sys.argv[2], sys.argv[3], sys.argv[4], s["mode"], s["environment"]["id"], s["state"].replace("_", " ")))' \
  "$STATUS" "$PROG" "$PARTICIPANT" "$RUNNER_DEST" || die "the runner's status is not what was set up: $STATUS"
AS_SOLUTION=$(runuser -u "$SCORER" -- sudo -n -u "$SOLUTION_USER" -- "$PYTHON" -I -c 'import os, pwd; print(pwd.getpwuid(os.geteuid()).pw_name)' 2>&1) \
  && [ "$AS_SOLUTION" = "$SOLUTION_USER" ] \
  || die "the scoring user cannot start $PYTHON as the solution user through sudo: $AS_SOLUTION"
runuser -u "$SOLUTION_USER" -- test -r "$SOLUTION_DIR" -a -x "$SOLUTION_DIR" \
  || die "the solution user $SOLUTION_USER cannot read $SOLUTION_DIR; give others read access to it (chmod o+rX)."
say "checked as $SCORER: sudo -n -u $SOLUTION_USER $PYTHON runs, and $SOLUTION_USER can read the solution folder"
# What the scorer reads to start the participant's code and to seed its hidden data, as each user sees it.
runuser -u "$SCORER" -- "$PYTHON" -I -c 'import json, sys
c = json.load(open(sys.argv[1]))
sys.exit(0 if (c.get("scoring_user"), c.get("solution_user"), c.get("python")) == tuple(sys.argv[2:5]) else 1)' \
  "$HOME_DIR/sandbox.json" "$SCORER" "$SOLUTION_USER" "$PYTHON" \
  || die "$HOME_DIR/sandbox.json, as the scoring user $SCORER reads it, does not name $SCORER, $SOLUTION_USER and $PYTHON."
runuser -u "$SCORER" -- test -r "$SECRET" || die "the scoring user $SCORER cannot read the scorer secret $SECRET."
for who in "$SOLUTION_USER" "$PARTICIPANT"; do
  ! runuser -u "$who" -- test -r "$SECRET" || die "$who can read the scorer secret $SECRET; only root and $SCORER may."
  if [ -d "$ENV_DEST/protected" ]; then
    ! runuser -u "$who" -- test -x "$ENV_DEST/protected" \
      || die "$who can enter $ENV_DEST/protected; only root and $SCORER may."
  fi
done
say "checked: $SCORER reads sandbox.json and the scorer secret; $SOLUTION_USER and $PARTICIPANT read neither the secret nor protected/"
for key in /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ecdsa_key.pub; do
  if [ -f "$key" ]; then
    say "host key fingerprint for the session profile: $(ssh-keygen -lf "$key" -E sha256 | awk '{print $2, $NF}')"
    break
  fi
done
say "done: give the participant a session profile with \"protected\": true"
