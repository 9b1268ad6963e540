// The study commands of rebench-organiser: watch, extend, infrastructure-pause, and prepare of many VMs
// (a hosts file or a folder of profiles). Options are read with node:util parseArgs; every mistake is a
// usage error (exit 2) that says what to give instead.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage } from '../core/errors';
import { grantSummary, grantTime, type GrantRequest } from './grant';
import { HOSTS_FILE_HELP, loadHostSpecs, type HostSpec } from './hosts';
import { DEFAULT_PREPARE_CONCURRENCY, prepareTargets } from './prepareMany';
import { runPrepareMany } from './prepareManyCommand';
import { DEFAULT_INTERVAL_S, DEFAULT_WATCH_CONCURRENCY } from './watch';
import { runWatch, type WatchTerminal } from './watchCommand';
import { DEFAULT_LIMITS } from './watchModel';

const TOOL = 'rebench-organiser';

export interface StudyCliIo {
  out(line: string): void;
  err(line: string): void;
  /** stderr when it is a terminal (progress bars). */
  tty?: { write(text: string): void; columns: number };
  /** stdout when it is a terminal (the watch table). */
  screen?: WatchTerminal;
  /** Ctrl-C: aborts the signal (the default listens to SIGINT). */
  interrupt?: AbortSignal;
}

/** A mistake in the arguments: exit code 2, with the command's help named. */
export class StudyUsageError extends Error {
  readonly usage = true;
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: readonly string[], options: Options): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...args], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    // node:util says e.g. "Unknown option '--x'" or "Option '--out <value>' argument missing".
    throw new StudyUsageError(
      errorMessage(e)
        .replace(/\. To specify a positional argument.*$/, '')
        .replace(/\s+$/, '') + '.',
    );
  }
}

function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : Array.isArray(x) ? x.at(-1) : undefined;
}

function list(v: Values, name: string): string[] | undefined {
  const x = v[name];
  return Array.isArray(x) ? x : typeof x === 'string' ? [x] : undefined;
}

function num(v: Values, name: string, min: number, max: number): number | undefined {
  const raw = str(v, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new StudyUsageError(`--${name} must be a number from ${min} to ${max}, not "${raw}".`);
  return n;
}

function files(v: Values, name: string, what: string): string[] | undefined {
  const found = list(v, name)?.map((f) => path.resolve(f));
  for (const f of found ?? []) if (!fs.existsSync(f)) throw new StudyUsageError(`--${what} ${f} does not exist.`);
  return found;
}

function loadTargets(positionals: string[], io: StudyCliIo, command: string): HostSpec[] | undefined {
  if (positionals.length === 0)
    throw new StudyUsageError(`${command} needs at least one TARGET: session profiles, a folder of them, a hosts file or USER@HOST[:PORT].`);
  const { specs, errors } = loadHostSpecs(positionals);
  if (errors.length) {
    for (const e of errors) io.err(e);
    io.err(`Nothing was done: fix the ${errors.length === 1 ? 'problem' : `${errors.length} problems`} above first.`);
    return undefined;
  }
  return specs;
}

function interruptSignal(io: StudyCliIo): { signal: AbortSignal; dispose(): void } {
  if (io.interrupt) return { signal: io.interrupt, dispose() {} };
  const controller = new AbortController();
  const stop = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', stop);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', stop) };
}

const CONNECT_OPTIONS: Options = {
  'known-hosts': { type: 'string', multiple: true },
  identity: { type: 'string', short: 'i', multiple: true },
  'no-agent': { type: 'boolean' },
  'connect-timeout': { type: 'string' },
};

const CONNECT_HELP = `      --known-hosts FILE     known_hosts file for hosts without a pinned fingerprint (repeatable;
                             default ~/.ssh/known_hosts). Unknown host keys are refused, never trusted.
  -i, --identity FILE        private key (repeatable; default ~/.ssh/id_*)
      --no-agent             do not use ssh-agent (SSH_AUTH_SOCK)
      --connect-timeout SECONDS   limit for connecting and logging in (default 20)`;

// ---------------------------------------------------------------------------------------------------------
// watch

export const WATCH_HELP = `Usage: ${TOOL} watch [options] TARGET...

A live view of the study: every VM read through its runner as collect reads it (read-only, a bounded
number at a time), one row per VM: participant, environment, state, time left, runs, last and best score
(raw and normalised), a scoring job and how long it has run, log integrity, the VM's clock offset and the
last contact. On a terminal the table redraws itself; otherwise every refresh is printed as plain lines.

It flags what needs an organiser: a host not reached for longer than a limit, a log that is not intact, a
clock offset over a limit, several runs in a row without a score, a session not started an hour after the
study's start, runs after the deadline, and a job running longer than the scorer's timeout.

TARGET is a session profile (.json), a folder of profiles, a hosts file, or USER@HOST[:PORT].
${HOSTS_FILE_HELP}

Options:
      --interval SECONDS     time between refreshes (default ${DEFAULT_INTERVAL_S})
  -j, --concurrency N        hosts read at the same time (default ${DEFAULT_WATCH_CONCURRENCY})
      --timeout SECONDS      limit per host and refresh (default: the interval, at least 10, at most 120)
      --flags FILE           write the flags after every refresh to FILE (JSON, replaced whole), for a script
      --plain                plain lines even on a terminal
      --once                 one refresh, then exit: 0 when nothing is flagged, 3 when something is
      --study-start TIME     when the study started (ISO 8601; default: when watch started)
      --not-started-after MINUTES   flag a session not started this long after the study's start (default ${DEFAULT_LIMITS.notStartedAfterS / 60})
      --unreachable-after SECONDS   flag a host not reached for this long (default ${DEFAULT_LIMITS.unreachableAfterS})
      --max-clock-offset SECONDS    flag a VM clock further off than this (default ${DEFAULT_LIMITS.clockOffsetS})
      --failed-runs N        flag this many runs in a row without a score (default ${DEFAULT_LIMITS.failedRunsInARow})
      --job-grace SECONDS    flag a job running this long past the scorer's timeout (default ${DEFAULT_LIMITS.jobGraceS})
      --admin USER           read protected VMs over this administrator's login (root, or passwordless
                             sudo) instead of the participant's: needed for hidden scores (scoring.visible)
${CONNECT_HELP}

Ctrl-C stops it. Exit codes: 0 stopped (or --once with no flag); 2 bad arguments; 3 --once found flags.`;

export async function watchCli(args: readonly string[], io: StudyCliIo): Promise<number> {
  const { values: v, positionals } = parse(args, {
    ...CONNECT_OPTIONS,
    interval: { type: 'string' },
    concurrency: { type: 'string', short: 'j' },
    timeout: { type: 'string' },
    flags: { type: 'string' },
    plain: { type: 'boolean' },
    once: { type: 'boolean' },
    'study-start': { type: 'string' },
    'not-started-after': { type: 'string' },
    'unreachable-after': { type: 'string' },
    'max-clock-offset': { type: 'string' },
    'failed-runs': { type: 'string' },
    'job-grace': { type: 'string' },
    admin: { type: 'string' },
  });
  if (v.help) {
    io.out(WATCH_HELP);
    return 0;
  }
  const interval = num(v, 'interval', 1, 86_400);
  const concurrency = num(v, 'concurrency', 1, 64);
  const timeout = num(v, 'timeout', 1, 3600);
  const connectTimeout = num(v, 'connect-timeout', 1, 600);
  const studyStartText = str(v, 'study-start');
  const studyStartMs = studyStartText === undefined ? undefined : Date.parse(studyStartText);
  if (studyStartText !== undefined && (!/(Z|[+-]\d\d:?\d\d)$/.test(studyStartText) || Number.isNaN(studyStartMs))) {
    throw new StudyUsageError(`--study-start must be an ISO 8601 time with its zone, e.g. 2026-03-01T09:00:00Z, not "${studyStartText}".`);
  }
  const notStarted = num(v, 'not-started-after', 0, 7 * 24 * 60);
  const flagsFile = str(v, 'flags');
  if (flagsFile !== undefined && !fs.existsSync(path.dirname(path.resolve(flagsFile)))) {
    throw new StudyUsageError(`--flags ${flagsFile}: the folder ${path.dirname(path.resolve(flagsFile))} does not exist; create it or give another file.`);
  }
  const knownHosts = files(v, 'known-hosts', 'known-hosts');
  const identities = files(v, 'identity', 'identity');
  const specs = loadTargets(positionals, io, 'watch');
  if (!specs) return 2;
  const stop = interruptSignal(io);
  try {
    return await runWatch(
      specs,
      {
        intervalS: interval,
        concurrency,
        hostTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
        connectTimeoutMs: connectTimeout === undefined ? undefined : connectTimeout * 1000,
        knownHostsFiles: knownHosts,
        identityFiles: identities,
        agent: v['no-agent'] ? false : undefined,
        admin: str(v, 'admin'),
        flagsFile: flagsFile === undefined ? undefined : path.resolve(flagsFile),
        plain: v.plain === true,
        once: v.once === true,
        limits: {
          ...(studyStartMs === undefined ? {} : { studyStartMs }),
          ...(notStarted === undefined ? {} : { notStartedAfterS: notStarted * 60 }),
          ...(num(v, 'unreachable-after', 0, 86_400) === undefined ? {} : { unreachableAfterS: num(v, 'unreachable-after', 0, 86_400)! }),
          ...(num(v, 'max-clock-offset', 0, 86_400) === undefined ? {} : { clockOffsetS: num(v, 'max-clock-offset', 0, 86_400)! }),
          ...(num(v, 'failed-runs', 1, 1000) === undefined ? {} : { failedRunsInARow: num(v, 'failed-runs', 1, 1000)! }),
          ...(num(v, 'job-grace', 0, 86_400) === undefined ? {} : { jobGraceS: num(v, 'job-grace', 0, 86_400)! }),
        },
      },
      { out: io.out, err: io.err, tty: io.screen },
      stop.signal,
    );
  } finally {
    stop.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------
// extend and infrastructure-pause

export const EXTEND_HELP = `Usage: ${TOOL} extend TARGET --minutes N --reason TEXT [--admin USER] [options]

Gives the participant N more minutes (more than 0, at most 1440), on the record: the VM's runner moves
the deadline and records the grant in the session's events with who and why; the participant's countdown
shows the new deadline and the reason. collect reports the time granted per participant.

TARGET is the participant's session profile, a hosts-file line's host, or USER@HOST[:PORT]; it must name
one VM. On a protected VM the grant is made over the administrator's login (--admin: root, or a user with
passwordless sudo), never the participant's: their sudo rule cannot grant time, and an attempt is refused
and recorded. On an unprotected VM it is made over the participant's login, and the runner's answer says
that this proves nothing about who granted it.

Options:
      --minutes N            minutes to add
      --reason TEXT          why (recorded; shown to the participant)
      --admin USER           the administrator's login on a protected VM
      --json                 print the runner's answer (the status with every grant) as JSON
${CONNECT_HELP}

Exit codes: 0 granted; 1 not granted (the message says why); 2 bad arguments.`;

export const PAUSE_HELP = `Usage: ${TOOL} infrastructure-pause TARGET --from TIME --to TIME --reason TEXT [--admin USER] [options]

Counts the stretch from --from to --to (ISO 8601 with a zone, e.g. 2026-03-01T10:15:00Z; after the
session's start, not in the future) as paused: the infrastructure failed then, so the time is given back
on the record. The deadline moves by the part of the stretch the participant had not paused already.
Everything else is as for "${TOOL} extend" (see its help).

Options:
      --from TIME, --to TIME the stretch
      --reason TEXT          why (recorded; shown to the participant)
      --admin USER           the administrator's login on a protected VM
      --json                 print the runner's answer as JSON
${CONNECT_HELP}

Exit codes: 0 granted; 1 not granted (the message says why); 2 bad arguments.`;

export function grantCli(kind: GrantRequest['kind']): (args: readonly string[], io: StudyCliIo) => Promise<number> {
  return async (args, io) => {
    const { values: v, positionals } = parse(args, {
      ...CONNECT_OPTIONS,
      minutes: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string' },
      admin: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (v.help) {
      io.out(kind === 'extend' ? EXTEND_HELP : PAUSE_HELP);
      return 0;
    }
    const reason = str(v, 'reason');
    if (reason === undefined) throw new StudyUsageError('--reason TEXT is required: say why the time is given back.');
    let request: GrantRequest;
    if (kind === 'extend') {
      if (v.from !== undefined || v.to !== undefined) throw new StudyUsageError('extend takes --minutes; --from and --to belong to infrastructure-pause.');
      const minutes = str(v, 'minutes');
      if (minutes === undefined) throw new StudyUsageError('--minutes N is required.');
      request = { kind, minutes: Number(minutes), reason };
    } else {
      if (v.minutes !== undefined) throw new StudyUsageError('infrastructure-pause takes --from and --to; --minutes belongs to extend.');
      const from = str(v, 'from');
      const to = str(v, 'to');
      if (from === undefined || to === undefined) throw new StudyUsageError('--from TIME and --to TIME are both required.');
      request = { kind, from, to, reason };
    }
    const connectTimeout = num(v, 'connect-timeout', 1, 600);
    const knownHosts = files(v, 'known-hosts', 'known-hosts');
    const identities = files(v, 'identity', 'identity');
    const specs = loadTargets(positionals, io, kind);
    if (!specs) return 2;
    if (specs.length !== 1) {
      throw new StudyUsageError(
        `${kind} gives time to one participant at a time, but ${positionals.join(' ')} names ${specs.length} VMs (${specs
          .slice(0, 4)
          .map((s) => s.participant)
          .join(', ')}${specs.length > 4 ? ', …' : ''}). Give that participant's profile or USER@HOST[:PORT].`,
      );
    }
    const spec = specs[0]!;
    try {
      const g = await grantTime(spec, request, {
        admin: str(v, 'admin'),
        identityFiles: identities,
        knownHostsFiles: knownHosts,
        agent: v['no-agent'] ? false : undefined,
        connectTimeoutMs: connectTimeout === undefined ? undefined : connectTimeout * 1000,
      });
      if (v.json) io.out(JSON.stringify(g.status, null, 2));
      for (const line of grantSummary(spec, g)) (v.json ? io.err : io.out)(line);
      return 0;
    } catch (e) {
      if ((e as { code?: unknown }).code === 'usage') throw new StudyUsageError(errorMessage(e));
      io.err(`${kind}: not granted: ${errorMessage(e)}`);
      return 1;
    }
  };
}

// ---------------------------------------------------------------------------------------------------------
// prepare of many VMs

export const PREPARE_MANY_HELP = `Usage: ${TOOL} prepare --admin USER (--environment DIR | --environments DIR) [options] TARGET...

Prepares every VM of a hosts file or a folder of session profiles, a bounded number at a time, each
exactly as "${TOOL} prepare --host ..." prepares one VM alone (the participant is the USER of each entry;
a profile is updated where it is), with one progress bar and one summary table: prepared, already in
place, failed and why. Preparing is safe to repeat: run it again once the failures are fixed.

${HOSTS_FILE_HELP}

Options:
      --admin USER           the administrator's login on every VM (root, or a user with passwordless sudo)
      --environment DIR      the environment folder to install on every VM
      --environments DIR     a folder of environment folders: each VM gets the one its entry names
                             (environment=ID on a hosts line, "environment" in a profile)
  -j, --concurrency N        VMs prepared at the same time (default ${DEFAULT_PREPARE_CONCURRENCY})
      --out-dir DIR          where the profiles of hosts-file VMs are written (default: this folder)
      --jump-admin USER      the administrator's login on jump hosts (default --admin)
      --scoring-user USER, --solution-dir DIR, --participant-key FILE, --create-participant, --force,
      --participant-identity-file PATH, --password-env NAME, --key-passphrase-env NAME,
      --accept-new-host-key  as for one VM ("${TOOL} prepare --help")
      --json                 print every VM's outcome as JSON on stdout
  -i, --identity FILE        the administrator's private key (repeatable; default ~/.ssh/id_*)
      --known-hosts FILE     known_hosts file (repeatable; default ~/.ssh/known_hosts)
      --no-agent             do not use ssh-agent

Exit codes: 0 every VM prepared or already in place; 1 at least one failed; 2 bad arguments.`;

/** Whether prepare's arguments name targets (hosts files, profiles) rather than one --host. */
export function isManyPrepare(args: readonly string[]): boolean {
  if (args.includes('--host') || args.some((a) => a.startsWith('--host='))) return false;
  try {
    return parse(args, PREPARE_MANY_OPTIONS).positionals.length > 0;
  } catch {
    return false;
  }
}

const PREPARE_MANY_OPTIONS: Options = {
  admin: { type: 'string' },
  environment: { type: 'string' },
  environments: { type: 'string' },
  concurrency: { type: 'string', short: 'j' },
  'out-dir': { type: 'string' },
  'jump-admin': { type: 'string' },
  'scoring-user': { type: 'string' },
  'solution-dir': { type: 'string' },
  'participant-key': { type: 'string' },
  'create-participant': { type: 'boolean' },
  force: { type: 'boolean' },
  'participant-identity-file': { type: 'string' },
  'password-env': { type: 'string' },
  'key-passphrase-env': { type: 'string' },
  'accept-new-host-key': { type: 'boolean' },
  json: { type: 'boolean' },
  identity: { type: 'string', short: 'i', multiple: true },
  'known-hosts': { type: 'string', multiple: true },
  'no-agent': { type: 'boolean' },
};

export async function prepareManyCli(args: readonly string[], io: StudyCliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values: v, positionals } = parse(args, PREPARE_MANY_OPTIONS);
  if (v.help) {
    io.out(PREPARE_MANY_HELP);
    return 0;
  }
  const admin = str(v, 'admin');
  if (!admin) throw new StudyUsageError("--admin USER is required (the administrator's login on every VM).");
  if (!str(v, 'environment') && !str(v, 'environments'))
    throw new StudyUsageError("--environment DIR (one for every VM) or --environments DIR (each VM's environment=ID) is required.");
  const outDir = str(v, 'out-dir');
  if (outDir !== undefined && !fs.existsSync(outDir)) throw new StudyUsageError(`--out-dir ${outDir} does not exist; create it first.`);
  const secret = (name: string): string | undefined => {
    const variable = str(v, name);
    if (variable === undefined) return undefined;
    const value = env[variable];
    if (!value) throw new StudyUsageError(`--${name} ${variable}: the environment variable ${variable} is not set (export it before running prepare).`);
    return value;
  };
  let participantPublicKey: string | undefined;
  const keyFile = str(v, 'participant-key');
  if (keyFile !== undefined) {
    try {
      participantPublicKey = fs.readFileSync(keyFile, 'utf8').trim();
    } catch (e) {
      throw new StudyUsageError(`--participant-key ${keyFile}: cannot read it (${errorMessage(e)}).`);
    }
  }
  if (v['create-participant'] && !participantPublicKey)
    throw new StudyUsageError("--create-participant needs --participant-key FILE (the participant's public key), or they could not log in.");
  const identities =
    files(v, 'identity', 'identity') ??
    ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(process.env.HOME ?? '', '.ssh', f)).filter((f) => fs.existsSync(f));
  const knownHosts = list(v, 'known-hosts') ?? [path.join(process.env.HOME ?? '', '.ssh', 'known_hosts')];
  const concurrency = num(v, 'concurrency', 1, 64);
  const specs = loadTargets(positionals, io, 'prepare');
  if (!specs) return 2;
  const { targets, errors } = prepareTargets(specs, {
    admin: {
      user: admin,
      identityFiles: identities,
      agent: v['no-agent'] ? false : undefined,
      password: secret('password-env'),
      keyPassphrase: secret('key-passphrase-env'),
      knownHostsFiles: knownHosts,
      acceptNewHostKey: v['accept-new-host-key'] === true,
    },
    environmentDir: str(v, 'environment'),
    environmentsDir: str(v, 'environments'),
    outDir,
    jumpAdmin: str(v, 'jump-admin'),
    scoringUser: str(v, 'scoring-user'),
    solutionDir: str(v, 'solution-dir'),
    createParticipant: v['create-participant'] === true,
    participantPublicKey,
    force: v.force === true,
    participantIdentityFile: str(v, 'participant-identity-file'),
  });
  if (errors.length) {
    for (const e of errors) io.err(`prepare: error: ${e}`);
    io.err(`Nothing was changed on any VM: fix the ${errors.length === 1 ? 'problem' : `${errors.length} problems`} above first.`);
    return 2;
  }
  const stop = interruptSignal(io);
  try {
    return await runPrepareMany(targets, { concurrency, signal: stop.signal, json: v.json === true }, io);
  } finally {
    stop.dispose();
  }
}
