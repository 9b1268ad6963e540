// The pure middle of "prepare a VM": what the VM reports (validated), what is already in place, what blocks
// the work, whose host key to trust, the starting-score record and the session profile. No SSH, no vscode.

import * as z from '../core/zod';
import { CodedError } from '../core/errors';
import { ENVIRONMENT_ID } from '../core/manifest';
import { parseProfile, type SessionProfile } from '../core/profile';
import { fingerprintSha256 } from '../core/ssh/hostKey';
import { entryMatchesHost, type KnownHostsEntry } from '../core/ssh/knownHosts';

export const PROTECTED_HOME = '/etc/rebench';
export const INSTALLED_RUNNER = '/usr/local/bin/rebench-runner';
export const SUDOERS_FILE = '/etc/sudoers.d/rebench';
export const STARTING_SCORE_FILE = `${PROTECTED_HOME}/starting-score.json`;
export const DEFAULT_SCORING_USER = 'rebench-scorer';
/** The user that runs the participant's code for scorers that run it (provision-protected.sh's default). */
export const SOLUTION_USER = 'rebench-solution';
export const SANDBOX_FILE = `${PROTECTED_HOME}/sandbox.json`;
export const SCORER_SECRET_FILE = `${PROTECTED_HOME}/scorer-secret`;
export const SOLUTION_SUDOERS_FILE = `${SUDOERS_FILE}-solution`;
/** The fewest bytes of a scorer secret that scorers accept (compute-forecast's score.py). */
export const SCORER_SECRET_MIN_BYTES = 16;
/** The same rule as provision-protected.sh's. */
export const VM_USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export type PrepareErrorCode =
  | 'usage'
  | 'install'
  | 'environment'
  | 'host-key'
  | 'login'
  | 'connection'
  | 'privileges'
  | 'vm'
  | 'participant'
  | 'provision'
  | 'starting-score'
  | 'profile'
  | 'metr'
  | 'cancelled';

/** A failure of prepare: the message says what is wrong and what to do about it. */
export class PrepareError extends CodedError {
  declare readonly code: PrepareErrorCode;
  constructor(code: PrepareErrorCode, message: string) {
    super(message, code, false);
    this.name = 'PrepareError';
  }
}

// ---------------------------------------------------------------------------------------------------------
// What prepare-vm.py inspect reports

const pathInfo = z.object({ owner: z.string(), mode: z.string(), kind: z.enum(['dir', 'file', 'link']) }).nullable();
const userInfo = z
  .object({ uid: z.number().int(), gid: z.number().int(), group: z.string(), groups: z.array(z.string()), home: z.string(), shell: z.string() })
  .nullable();

export const inspectionSchema = z.object({
  type: z.literal('inspection'),
  python: z.object({ path: z.string(), version: z.array(z.number().int()) }),
  tools: z.record(z.string(), z.boolean()),
  sudoers_includes_dir: z.boolean(),
  participant: userInfo,
  scoring_user: userInfo,
  home: pathInfo,
  environments_dir: pathInfo,
  runner: z.object({ owner: z.string(), mode: z.string(), kind: z.string(), first_line: z.string(), body_sha256: z.string() }).nullable(),
  environment: z.object({ sha256: z.string(), problems: z.array(z.string()) }).nullable(),
  config: z.unknown().nullable(),
  config_file: pathInfo,
  state: pathInfo,
  session: z.object({ environment: z.string().nullable().optional(), started_at: z.string().nullable().optional() }).nullable(),
  solution: z.object({ path: z.string(), info: pathInfo, scorer_can_read: z.boolean().nullable() }).nullable(),
  sudoers: z.object({ owner: z.string(), mode: z.string(), kind: z.string(), rules: z.array(z.string()) }).nullable(),
  participant_check: z
    .object({ code: z.number().int(), mode: z.string().nullable(), environment: z.string().nullable(), error: z.string().nullable() })
    .nullable(),
  starting_score: z.unknown().nullable(),
  scratch: z.boolean(),
  solution_user: userInfo,
  sandbox: z.object({ owner: z.string(), mode: z.string(), kind: z.string(), config: z.unknown().nullable() }).nullable(),
  scorer_secret: z.object({ owner: z.string(), mode: z.string(), kind: z.string(), bytes: z.number().int() }).nullable(),
  solution_sudoers: z.object({ owner: z.string(), mode: z.string(), kind: z.string(), rules: z.array(z.string()) }).nullable(),
});
export type Inspection = z.infer<typeof inspectionSchema>;

export const startingScoreRecordSchema = z.object({
  environment: z.string(),
  environment_version: z.string().nullable(),
  environment_sha256: z.string(),
  scoring_command: z.array(z.string()),
  direction: z.enum(['higher', 'lower']),
  manifest_starting_score: z.number(),
  reference_score: z.number(),
  score: z.number().nullable(),
  message: z.string().nullable(),
  measured_at: z.string().nullable(),
  duration_s: z.number().nullable(),
  exit_code: z.number().int().nullable(),
  timed_out: z.boolean().nullable(),
  solution_hash: z.string().nullable(),
  scoring_user: z.string(),
  runner_version: z.string().nullable(),
});
export type StartingScoreRecord = z.infer<typeof startingScoreRecordSchema>;

/** Lines prepare-vm.py prints while measuring: progress, then the result (or an error). */
export const measureEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job'), job_id: z.string().nullable() }),
  z.object({ type: z.literal('output'), text: z.string() }),
  z.object({ type: z.literal('note'), message: z.string() }),
  z.object({ type: z.literal('measured'), record: startingScoreRecordSchema, resumed: z.boolean() }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type MeasureEvent = z.infer<typeof measureEventSchema>;

export const participantReplySchema = z.object({ type: z.literal('participant'), created: z.boolean(), added_key: z.boolean(), home: z.string() });

export const vmErrorSchema = z.object({ type: z.literal('error'), message: z.string() });

// ---------------------------------------------------------------------------------------------------------
// What is in place

export interface Expected {
  environmentId: string;
  environmentSha256: string;
  runnerBodySha256: string;
  participant: string;
  scoringUser: string;
  /** Absolute path on the VM; undefined means provisioning's default, ~participant/solution. */
  solutionDir?: string;
  /** Whether the participant's login may be created when it is missing. */
  createParticipant: boolean;
  /** Replace the environment although a session has started with it (provision-protected.sh --force). */
  force: boolean;
}

export interface Assessment {
  /** Problems a person must fix before anything is changed; nothing is changed while there are any. */
  blockers: string[];
  /** Whether the participant's login must be created first. */
  createParticipant: boolean;
  /** What provisioning has already made, one line each. */
  inPlace: string[];
  /** What provisioning must (re)make, one line each; empty means provisioning is skipped. */
  missing: string[];
  /** For each missing item, how it reads once provisioning has made it. */
  fixes: string[];
}

/** The expected sudo rule's lines, as provision-protected.sh writes them. */
export function expectedSudoRules(participant: string): string[] {
  return [`Defaults!${INSTALLED_RUNNER} !requiretty`, `${participant} ALL=(root) NOPASSWD: ${INSTALLED_RUNNER}`];
}

/** The scoring user's sudo rule, as provision-protected.sh writes it: start `python` as the solution user, nothing else. */
export function expectedSolutionSudoRules(scoringUser: string, python: string): string[] {
  return [`Defaults:${scoringUser} !requiretty, !use_pty`, `${scoringUser} ALL=(${SOLUTION_USER}) NOPASSWD: ${python}`];
}

/** The interpreter of the installed runner's first line ("#!/usr/bin/python3 -I"), which provisioning also names in sandbox.json and the scorer's sudo rule. */
export function runnerPython(inspection: Inspection): string | undefined {
  const m = inspection.runner?.first_line.match(/^#!(\/\S+)/);
  return m ? m[1] : undefined;
}

export function solutionDirOf(inspection: Inspection, expected: Expected): string | undefined {
  return expected.solutionDir ?? (inspection.participant ? `${inspection.participant.home.replace(/\/+$/, '')}/solution` : undefined);
}

function sameJson(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .sort(([x], [y]) => (x < y ? -1 : 1))
            .map(([k, x]) => [k, canon(x)]),
        )
      : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/** Compares what the VM reports with what prepare would make. */
export function assess(inspection: Inspection, expected: Expected): Assessment {
  const blockers: string[] = [];
  const inPlace: string[] = [];
  const missing: string[] = [];
  const fixes: string[] = [];
  const { participant: p, scoring_user: s } = inspection;

  const [major = 0, minor = 0] = inspection.python.version;
  if (major < 3 || (major === 3 && minor < 8)) {
    blockers.push(
      `The VM's python3 (${inspection.python.path}) is version ${inspection.python.version.join('.')}; the runner needs 3.8 or newer. Install a newer python3 as /usr/bin/python3 and run prepare again.`,
    );
  }
  for (const [tool, pkg] of [
    ['visudo', 'sudo'],
    ['sudo', 'sudo'],
    ['runuser', 'util-linux'],
    ['useradd', 'passwd'],
    ['bash', 'bash'],
    ['tar', 'tar'],
  ] as const) {
    if (inspection.tools[tool] === false) blockers.push(`${tool} is not installed on the VM; install it (apt-get install ${pkg}) and run prepare again.`);
  }
  if (!inspection.sudoers_includes_dir) {
    blockers.push(
      '/etc/sudoers on the VM has no "@includedir /etc/sudoers.d" line, so the participant\'s sudo rule would have no effect. Add that line with visudo and run prepare again.',
    );
  }

  let createParticipant = false;
  if (!p) {
    if (expected.createParticipant) createParticipant = true;
    else {
      blockers.push(
        `The participant user "${expected.participant}" does not exist on the VM. Create their login first (e.g. sudo useradd -m -s /bin/bash ${expected.participant}, and put their public key in ~${expected.participant}/.ssh/authorized_keys), or run prepare with --create-participant --participant-key FILE.`,
      );
    }
  } else if (p.uid === 0) {
    blockers.push(
      `The participant user "${expected.participant}" is root (uid 0); a participant must be an ordinary user, or the sudo rule and the file permissions protect nothing. Pick another participant user.`,
    );
  }
  if (expected.scoringUser === expected.participant) {
    blockers.push(
      `The scoring user must differ from the participant ("${expected.participant}"), or the participant could write the scorer's result. Pick another --scoring-user.`,
    );
  }
  if (s) {
    if (s.uid === 0)
      blockers.push(
        `The scoring user "${expected.scoringUser}" is root; the scorer must not run as root. Pick another --scoring-user (it is created when missing).`,
      );
    if (p && p.groups.includes(s.group)) {
      blockers.push(
        `The participant "${expected.participant}" is in the group "${s.group}" of the scoring user "${expected.scoringUser}", so they could read the hidden scorer data. Pick another --scoring-user, or take ${expected.participant} out of that group.`,
      );
    }
  }
  const su = inspection.solution_user;
  if (su) {
    if (su.uid === 0)
      blockers.push(
        `The solution user "${SOLUTION_USER}" on the VM is root (uid 0); it runs the participant's code for scorers, so it must be an ordinary user. Remove it (userdel ${SOLUTION_USER}) and run prepare again: provisioning creates it.`,
      );
    if (s && su.groups.includes(s.group))
      blockers.push(
        `The solution user "${SOLUTION_USER}" is in the group "${s.group}" of the scoring user, so the participant's code could read the hidden scorer data. Take it out of that group (gpasswd -d ${SOLUTION_USER} ${s.group}) and run prepare again.`,
      );
  }
  if ([expected.participant, expected.scoringUser].includes(SOLUTION_USER))
    blockers.push(`"${SOLUTION_USER}" runs the participant's code for scorers; it cannot also be the participant or the scoring user. Pick another user.`);
  const secret = inspection.scorer_secret;
  if (secret && (secret.kind !== 'file' || secret.bytes < SCORER_SECRET_MIN_BYTES)) {
    blockers.push(
      `The scorer secret ${SCORER_SECRET_FILE} on the VM is ${secret.kind !== 'file' ? `a ${secret.kind}, not a file` : `${secret.bytes} bytes long; scorers need at least ${SCORER_SECRET_MIN_BYTES}`}. Remove it (provisioning makes a new random one) and run prepare again; a session already started would then get other hidden seeds.`,
    );
  }
  const session = inspection.session;
  if (session && session.environment !== expected.environmentId) {
    blockers.push(
      `A session for "${session.environment ?? '?'}" has started on this VM (${PROTECTED_HOME}/state/session.json, started ${session.started_at ?? 'at an unknown time'}); it cannot switch to "${expected.environmentId}". Archive and remove ${PROTECTED_HOME}/state on the VM first if that session is over.`,
    );
  } else if (session && inspection.environment && inspection.environment.sha256 !== expected.environmentSha256 && !expected.force) {
    blockers.push(
      `A session has started on this VM with the installed copy of "${expected.environmentId}", and your environment folder differs from it. Replacing the scorer during a session changes its rules; pass --force to do it anyway.`,
    );
  }
  const solutionDir = solutionDirOf(inspection, expected);
  const sol = inspection.solution;
  if (sol?.info && sol.info.kind !== 'dir') {
    blockers.push(`${sol.path} on the VM exists but is not a folder (it is a ${sol.info.kind}); move it away or pass another --solution-dir.`);
  }

  // What provisioning makes, item by item.
  const check = (ok: boolean, good: string, bad: string) => {
    if (ok) inPlace.push(good);
    else {
      missing.push(bad);
      fixes.push(`${good} (before: ${bad})`);
    }
  };
  const r = inspection.runner;
  check(
    !!r &&
      r.owner === 'root:root' &&
      r.mode === '0755' &&
      / -I$/.test(r.first_line) &&
      r.first_line.startsWith('#!/') &&
      r.body_sha256 === expected.runnerBodySha256,
    `the runner ${INSTALLED_RUNNER} (root:root 0755) is this runner`,
    !r
      ? `the runner ${INSTALLED_RUNNER} is not installed`
      : r.body_sha256 !== expected.runnerBodySha256
        ? `the runner ${INSTALLED_RUNNER} differs from this runner`
        : `the runner ${INSTALLED_RUNNER} is ${r.owner} ${r.mode}, not root:root 0755 with "python3 -I"`,
  );
  check(!!s, `the scoring user ${expected.scoringUser} exists`, `the scoring user ${expected.scoringUser} does not exist yet`);
  const env = inspection.environment;
  const envDir = `${PROTECTED_HOME}/environments/${expected.environmentId}`;
  check(
    !!env && env.sha256 === expected.environmentSha256 && env.problems.length === 0,
    `the environment ${envDir} is your environment folder, owned by root (protected/ readable by the scoring user only)`,
    !env
      ? `the environment ${envDir} is not installed`
      : env.sha256 !== expected.environmentSha256
        ? `the environment ${envDir} differs from your environment folder`
        : `the environment ${envDir} has wrong owners or modes: ${env.problems.slice(0, 3).join('; ')}`,
  );
  const wantConfig = {
    mode: 'protected',
    environment: expected.environmentId,
    environments_dir: `${PROTECTED_HOME}/environments`,
    state_dir: `${PROTECTED_HOME}/state`,
    solution_dir: solutionDir,
    scoring_user: expected.scoringUser,
  };
  check(
    !!solutionDir && sameJson(inspection.config, wantConfig) && inspection.config_file?.owner === 'root:root' && inspection.config_file.mode === '0644',
    `${PROTECTED_HOME}/runner.json names protected mode, ${expected.environmentId}, ${solutionDir} and ${expected.scoringUser}`,
    inspection.config === null
      ? `${PROTECTED_HOME}/runner.json does not exist`
      : `${PROTECTED_HOME}/runner.json is not the expected protected-mode configuration`,
  );
  check(
    inspection.state?.owner === 'root:root' && inspection.state.mode === '0711' && inspection.state.kind === 'dir',
    `the state folder ${PROTECTED_HOME}/state (score log, session) is root:root 0711`,
    inspection.state
      ? `the state folder ${PROTECTED_HOME}/state is ${inspection.state.owner} ${inspection.state.mode}, not root:root 0711`
      : `the state folder ${PROTECTED_HOME}/state does not exist`,
  );
  check(
    !!sol?.info && sol.info.kind === 'dir' && sol.scorer_can_read === true,
    `the solution folder ${sol?.path ?? solutionDir} exists and the scoring user can read it`,
    !sol?.info
      ? `the solution folder ${solutionDir ?? '~participant/solution'} does not exist`
      : `the scoring user cannot read the solution folder ${sol.path}`,
  );
  const sudo = inspection.sudoers;
  check(
    !!sudo && sudo.owner === 'root:root' && sudo.mode === '0440' && sameJson(sudo.rules, expectedSudoRules(expected.participant)),
    `the sudo rule ${SUDOERS_FILE} lets ${expected.participant} run ${INSTALLED_RUNNER} as root, nothing else`,
    !sudo ? `the sudo rule ${SUDOERS_FILE} does not exist` : `the sudo rule ${SUDOERS_FILE} is not the one for ${expected.participant}`,
  );
  check(
    !!su,
    `the solution user ${SOLUTION_USER} exists (it runs the participant's code for scorers that run it)`,
    `the solution user ${SOLUTION_USER} does not exist yet`,
  );
  const python = runnerPython(inspection);
  const sandbox = inspection.sandbox;
  const wantSandbox = sandbox?.config && typeof sandbox.config === 'object' ? (sandbox.config as Record<string, unknown>) : undefined;
  check(
    !!sandbox &&
      sandbox.owner === 'root:root' &&
      sandbox.mode === '0644' &&
      sandbox.kind === 'file' &&
      !!wantSandbox &&
      wantSandbox.scoring_user === expected.scoringUser &&
      wantSandbox.solution_user === SOLUTION_USER &&
      !!python &&
      wantSandbox.python === python &&
      typeof wantSandbox.sudo === 'string' &&
      wantSandbox.sudo.startsWith('/'),
    `${SANDBOX_FILE} (root:root 0644) names ${expected.scoringUser} as the scoring user and ${SOLUTION_USER} as the solution user`,
    !sandbox
      ? `${SANDBOX_FILE} does not exist`
      : sandbox.owner !== 'root:root' || sandbox.mode !== '0644' || sandbox.kind !== 'file'
        ? `${SANDBOX_FILE} is ${sandbox.owner} ${sandbox.mode} (${sandbox.kind}), not a file root:root 0644`
        : `${SANDBOX_FILE} does not name ${expected.scoringUser}, ${SOLUTION_USER} and the runner's python`,
  );
  check(
    !!secret && secret.kind === 'file' && secret.owner === `root:${s?.group ?? expected.scoringUser}` && secret.mode === '0640',
    `the scorer secret ${SCORER_SECRET_FILE} is readable by root and the scoring user only (root:${s?.group ?? expected.scoringUser} 0640)`,
    !secret
      ? `the scorer secret ${SCORER_SECRET_FILE} does not exist`
      : `the scorer secret ${SCORER_SECRET_FILE} is ${secret.owner} ${secret.mode}, not root:${s?.group ?? expected.scoringUser} 0640`,
  );
  const solutionSudo = inspection.solution_sudoers;
  check(
    !!solutionSudo &&
      solutionSudo.owner === 'root:root' &&
      solutionSudo.mode === '0440' &&
      !!python &&
      sameJson(solutionSudo.rules, expectedSolutionSudoRules(expected.scoringUser, python)),
    `the sudo rule ${SOLUTION_SUDOERS_FILE} lets ${expected.scoringUser} start python as ${SOLUTION_USER}, nothing else`,
    !solutionSudo
      ? `the sudo rule ${SOLUTION_SUDOERS_FILE} does not exist`
      : `the sudo rule ${SOLUTION_SUDOERS_FILE} is not the one for ${expected.scoringUser} and ${SOLUTION_USER}`,
  );
  const pc = inspection.participant_check;
  check(
    !!pc && pc.code === 0 && pc.mode === 'protected' && pc.environment === expected.environmentId,
    `${expected.participant} reaches the runner through sudo: protected mode, ${expected.environmentId}`,
    !pc
      ? `${expected.participant} cannot reach the runner through sudo yet`
      : `${expected.participant} running the runner through sudo got: ${pc.error ?? `mode ${pc.mode}, environment ${pc.environment}`}`,
  );
  return { blockers, createParticipant, inPlace, missing, fixes };
}

/** The starting-score record on the VM, if it was measured with this very environment. */
export function currentStartingScore(inspection: Inspection, environmentSha256: string): StartingScoreRecord | undefined {
  const parsed = startingScoreRecordSchema.safeParse(inspection.starting_score);
  if (!parsed.success) return undefined;
  const r = parsed.data;
  return r.environment_sha256 === environmentSha256 && r.score !== null ? r : undefined;
}

export interface StartingScore {
  /** Measured on this VM by the installed scorer, as the scoring user. */
  measured: number;
  /** The manifest's starting_score. */
  manifest: number;
  reference: number;
  direction: 'higher' | 'lower';
  /** Where the measured score lies between the manifest's starting (0) and reference (1) scores. */
  normalized: number;
  message: string;
  measuredAt: string | null;
  durationS: number | null;
  /** False when the record on the VM was already current and nothing was run. */
  measuredNow: boolean;
}

export function startingScoreOf(record: StartingScoreRecord, measuredNow: boolean): StartingScore {
  const measured = record.score as number;
  return {
    measured,
    manifest: record.manifest_starting_score,
    reference: record.reference_score,
    direction: record.direction,
    normalized: (measured - record.manifest_starting_score) / (record.reference_score - record.manifest_starting_score),
    message: record.message ?? '',
    measuredAt: record.measured_at,
    durationS: record.duration_s,
    measuredNow,
  };
}

/** A note when this VM's starting score is far from the manifest's: normalised scores would be off by that much. */
export function startingScoreWarning(s: StartingScore): string | undefined {
  if (Math.abs(s.normalized) <= 0.2) return undefined;
  return (
    `The starting solution scored ${fmt(s.measured)} on this VM, but the manifest's starting_score is ${fmt(s.manifest)}: ` +
    `${Math.round(Math.abs(s.normalized) * 100)}% of the way ${s.normalized > 0 ? 'towards' : 'away from'} the reference score ${fmt(s.reference)}. ` +
    "Normalised scores on this VM are measured against the manifest's numbers; check the VM's hardware, or compare participants with the measured starting score (recorded in " +
    `${STARTING_SCORE_FILE}).`
  );
}

export function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+$/, '');
}

// ---------------------------------------------------------------------------------------------------------
// Host keys: the organiser's decision, made before anything is sent

export interface HostKeyPolicy {
  /** "host:port" as connected to -> a fingerprint to require, and where it came from. */
  pins: Map<string, { fingerprint: string; source: string }>;
  /** The organiser's known_hosts entries. */
  knownHosts: KnownHostsEntry[];
  knownHostsFiles: readonly string[];
  /** Trust a key that nothing vouches for (first contact with a fresh VM). */
  acceptNew: boolean;
}

export interface PresentedKey {
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
}

export type HostKeyDecision = { ok: true; how: 'pinned' | 'known-hosts' | 'accepted-new'; note: string } | { ok: false; ask: boolean; message: string };

export function hostKeyId(host: string, port: number): string {
  return `${host.toLowerCase()}:${port}`;
}

/** Decides whether to trust a presented host key; `ask: true` means a person may still accept it. */
export function decideHostKey(key: PresentedKey, policy: HostKeyPolicy): HostKeyDecision {
  const where = `${key.host}:${key.port}`;
  const checkOnConsole = `Check the key on the VM's console (ssh-keygen -lf /etc/ssh/ssh_host_${key.keyType === 'ssh-ed25519' ? 'ed25519' : key.keyType.startsWith('ecdsa') ? 'ecdsa' : 'rsa'}_key.pub)`;
  const pin = policy.pins.get(hostKeyId(key.host, key.port));
  if (pin) {
    if (pin.fingerprint === key.fingerprint) return { ok: true, how: 'pinned', note: `host key of ${where} ${key.fingerprint} matches ${pin.source}` };
    return {
      ok: false,
      ask: false,
      message:
        `The host key of ${where} is ${key.fingerprint}, but ${pin.source} pins ${pin.fingerprint}. This can mean the VM was rebuilt, or that someone is intercepting the connection; nothing was sent. ` +
        `${checkOnConsole}; if the new key is right, pass --host-key-fingerprint ${key.fingerprint}${pin.source.startsWith('the existing profile') ? ' (or delete the old profile)' : ''}.`,
    };
  }
  const mine = policy.knownHosts.filter((e) => e.marker !== 'cert-authority' && entryMatchesHost(e, key.host, key.port));
  const revoked = mine.find((e) => e.marker === 'revoked' && fingerprintSha256(e.key) === key.fingerprint);
  if (revoked) {
    return {
      ok: false,
      ask: false,
      message: `The host key of ${where} (${key.fingerprint}) is marked @revoked on line ${revoked.line} of ${revoked.file}; it must not be trusted. Nothing was sent.`,
    };
  }
  const sameType = mine.filter((e) => !e.marker && e.keyType === key.keyType);
  const match = sameType.find((e) => fingerprintSha256(e.key) === key.fingerprint);
  if (match) return { ok: true, how: 'known-hosts', note: `host key of ${where} ${key.fingerprint} found on line ${match.line} of ${match.file}` };
  if (sameType[0]) {
    return {
      ok: false,
      ask: false,
      message:
        `The host key of ${where} has changed: it is now ${key.fingerprint}, but line ${sameType[0].line} of ${sameType[0].file} records another key. This can mean the VM was rebuilt, or that someone is intercepting the connection; nothing was sent. ` +
        `${checkOnConsole}; if the new key is right, remove that line (ssh-keygen -R '${key.port === 22 ? key.host : `[${key.host}]:${key.port}`}') or pass --host-key-fingerprint ${key.fingerprint}.`,
    };
  }
  if (policy.acceptNew)
    return { ok: true, how: 'accepted-new', note: `host key of ${where} ${key.keyType} ${key.fingerprint} accepted on first contact (--accept-new-host-key)` };
  const files = policy.knownHostsFiles.length ? policy.knownHostsFiles.join(', ') : 'no known_hosts file';
  return {
    ok: false,
    ask: true,
    message:
      `The host key of ${where} (${key.keyType} ${key.fingerprint}) is not pinned and not in ${files}, so the VM's identity cannot be checked; nothing was sent. ` +
      `${checkOnConsole} and pass --host-key-fingerprint ${key.fingerprint} if it matches, or pass --accept-new-host-key to trust it on first contact.`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The session profile

export interface ProfileInput {
  name?: string;
  host: string;
  port: number;
  participant: string;
  hostKeyFingerprint: string;
  environmentId: string;
  environmentTitle: string;
  jump?: { host: string; port: number; user: string; hostKeyFingerprint: string };
  identityFile?: string;
}

/** Builds the participant's profile and checks it with the same parser the extension imports it with. */
export function buildProfile(input: ProfileInput): { profile: SessionProfile; text: string } {
  const defaultName = `${input.environmentTitle} (${input.participant}@${input.host}${input.port === 22 ? '' : `:${input.port}`})`;
  const raw: Record<string, unknown> = {
    name: (input.name ?? defaultName).slice(0, 120),
    host: input.host,
    port: input.port,
    user: input.participant,
    host_key_fingerprint: input.hostKeyFingerprint,
    environment: input.environmentId,
    protected: true,
  };
  if (input.jump) {
    raw.jump = { host: input.jump.host, port: input.jump.port, user: input.jump.user, host_key_fingerprint: input.jump.hostKeyFingerprint };
  }
  if (input.identityFile) raw.identity_file = input.identityFile;
  const text = `${JSON.stringify(raw, null, 2)}\n`;
  const parsed = parseProfile(text, 'the profile prepare would write');
  if (!parsed.ok)
    throw new PrepareError('profile', `${parsed.error.replace(/ Ask your organiser to check it\.$/, '')}. Check --host, --participant, --name and --jump.`);
  return { profile: parsed.value, text };
}

export function validEnvironmentId(id: string): boolean {
  return ENVIRONMENT_ID.test(id);
}

// ---------------------------------------------------------------------------------------------------------
// sudo's answers, in words

/** What `sudo -n true` failing means, and how to fix it. */
export function explainSudoFailure(user: string, code: number | null, stderr: string): string {
  const said = stderr.trim().split('\n').slice(-2).join(' ').slice(0, 300);
  const grant = `Log in as root (--admin root), or give ${user} passwordless sudo on the VM: echo '${user} ALL=(ALL) NOPASSWD: ALL' | sudo tee /etc/sudoers.d/${user.replace(/[^A-Za-z0-9_-]/g, '_')} && sudo chmod 0440 /etc/sudoers.d/${user.replace(/[^A-Za-z0-9_-]/g, '_')}.`;
  if (code === 127 || (/command not found|not found/i.test(said) && !/sudoers/i.test(said))) {
    return `sudo is not installed on the VM, and the administrator login ${user} is not root. Log in as root (--admin root), or install sudo (apt-get install sudo) and give ${user} passwordless sudo.`;
  }
  if (/password is required/i.test(said)) {
    return `${user} cannot use sudo on the VM without a password (sudo said: "${said}"): either ${user} may not use sudo at all, or only after typing a password. prepare runs its commands as root without a terminal, so it needs passwordless sudo. ${grant}`;
  }
  if (/not in the sudoers|may not run sudo|not allowed to/i.test(said)) {
    return `${user} may not use sudo on the VM (sudo said: "${said}"); prepare needs root to install the runner, the environment and the sudo rule. ${grant}`;
  }
  return `sudo -n true failed for ${user} on the VM (exit ${code ?? 'by a signal'}: "${said || 'no message'}"); prepare needs root. ${grant}`;
}
