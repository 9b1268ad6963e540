// Collects every participant's session status and score log, many hosts at once. Each host is read
// through its runner (so a protected VM answers through its sudo rule), its chain is checked by the
// runner's own `verify`, and a failure on one host is recorded without stopping the others.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodedError, SessionError, errorMessage, isCodedError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { RecordsReply } from '../core/participantProtocol';
import type { HiddenReply, RunnerStatus, ScoreLogEntry, VerifyResult } from '../core/runnerProtocol';
import { RUNNER_VERSION } from '../core/runnerProtocol';
import { RunnerClient } from '../core/runnerClient';
import { SshTarget } from '../core/ssh/sshTarget';
import type { Target } from '../core/target';
import { hostLabel, runnerCommandFor, type HostSpec } from './hosts';
import { INSTALLED_RUNNER } from './prepareCore';

export type HostPhase = 'waiting' | 'connecting' | 'reading' | 'verifying' | 'done' | 'failed';

export interface CollectProgress {
  /** Position of the host in the list given to collect(). */
  index: number;
  spec: HostSpec;
  phase: HostPhase;
  /** Hosts finished (done or failed) so far, and in all. */
  finished: number;
  total: number;
  /** The error, for phase 'failed'. */
  error?: string;
}

/** How far the score log can be trusted. */
export type Integrity = 'intact' | 'broken' | 'unknown';

export interface HostResult {
  index: number;
  spec: HostSpec;
  /** user@host:port */
  label: string;
  ok: boolean;
  /** Why the host could not be read; set when ok is false. */
  error?: string;
  errorCode?: string;
  status?: RunnerStatus;
  entries: ScoreLogEntry[];
  verify?: VerifyResult;
  /** The hidden scores (scoring.visible), where the log has any and the runner gave them to this login. */
  hidden?: HiddenReply;
  integrity: Integrity;
  /** The runner's reason when broken, or why it is unknown. */
  integrityDetail: string | null;
  /** The score log byte for byte as the runner exported it (UTF-8), for the archive. */
  rawLog?: string;
  /** The session record (notes, rules confirmed, restores, giving up, answers); absent from older runners. */
  records?: RecordsReply;
  /** Kept solutions as .tar.gz by score log index: the counting entry's, or every entry's with allSolutions. */
  solutions?: Map<number, Buffer>;
  /** The VM's clock minus this machine's, measured over the status read (ms), and that read's round trip. */
  clockOffsetMs?: number;
  clockRttMs?: number;
  /** Things worth knowing that do not stop the collection (another environment than expected, ...). */
  warnings: string[];
  /** What the connection and the runner calls did, for when something went wrong. */
  log: string[];
  collectedAt: string;
  durationMs: number;
}

export interface CollectOptions {
  /** Hosts read at the same time (default 8). */
  concurrency?: number;
  /** Limit for one host, connection included (default 120 s). */
  hostTimeoutMs?: number;
  /** Limit for the TCP connection, SSH handshake and login (default 20 s). */
  connectTimeoutMs?: number;
  /** known_hosts files for hosts without a pinned fingerprint (default ~/.ssh/known_hosts). */
  knownHostsFiles?: readonly string[];
  /** Keys for hosts whose spec names none (default ~/.ssh/id_ed25519, id_ecdsa, id_rsa where present). */
  identityFiles?: readonly string[];
  /** ssh-agent socket; default SSH_AUTH_SOCK; false for none. */
  agent?: string | false;
  onProgress?: (p: CollectProgress) => void;
  /** Stops the collection: hosts under way fail with "cancelled", waiting ones are not started. */
  signal?: AbortSignal;
  /** Opens the connection to a host; default SSH with the options above. */
  openTarget?: (spec: HostSpec, logger: Logger) => Promise<Target>;
  /** Keep the solution of every scored run, not only of the one that counts. */
  allSolutions?: boolean;
  /** Also export the score log byte for byte for the archive (default true; the live view does without). */
  archive?: boolean;
  /**
   * The administrator's login for protected VMs (root, or a user with passwordless sudo): they are then read
   * over it instead of the participant's, which also gives the hidden scores the participant's sudo rule cannot.
   */
  admin?: string;
}

const LOG_LINES_KEPT = 200;

export function defaultIdentityFiles(home = os.homedir()): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((n) => path.join(home, '.ssh', n)).filter((p) => fs.existsSync(p));
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** An SSH target for a host spec: host keys pinned or checked against known_hosts, never asked about. */
export function sshTargetFor(spec: HostSpec, options: CollectOptions, logger: Logger): SshTarget {
  const identityFiles = spec.identityFile ? [expandHome(spec.identityFile)] : [...(options.identityFiles ?? defaultIdentityFiles())];
  return new SshTarget({
    host: spec.host,
    port: spec.port,
    user: spec.user,
    identityFiles,
    agent: options.agent,
    jump: spec.jump ? { host: spec.jump.host, port: spec.jump.port, user: spec.jump.user, pinnedFingerprint: spec.jump.fingerprint, identityFiles } : undefined,
    pinnedFingerprint: spec.fingerprint,
    knownHostsFiles: options.knownHostsFiles ?? [path.join(os.homedir(), '.ssh', 'known_hosts')],
    readyTimeoutMs: options.connectTimeoutMs ?? 20_000,
    keepaliveIntervalMs: 10_000,
    keepaliveCountMax: 3,
    // A host that drops out is reported; the organiser runs the collection again.
    reconnect: { maxAttempts: 1 },
    logger,
  });
}

class HostLog implements Logger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.add('info', message);
  }
  warn(message: string): void {
    this.add('warn', message);
  }
  error(message: string): void {
    this.add('error', message);
  }
  private add(level: string, message: string): void {
    if (this.lines.length < LOG_LINES_KEPT) this.lines.push(`${new Date().toISOString()} ${level} ${message}`);
  }
}

class Cancelled extends CodedError {
  constructor(message: string, code: string) {
    super(message, code, true);
  }
}

/** Reads every host, at most `concurrency` at a time; the results come back in the order of `specs`. */
export async function collect(specs: readonly HostSpec[], options: CollectOptions = {}): Promise<HostResult[]> {
  const total = specs.length;
  const concurrency = Math.max(1, Math.min(64, Math.floor(options.concurrency ?? 8)));
  const results: HostResult[] = new Array(total);
  let finished = 0;
  let next = 0;
  const report = (index: number, phase: HostPhase, error?: string) => {
    options.onProgress?.({ index, spec: specs[index]!, phase, finished, total, error });
  };
  specs.forEach((_, i) => report(i, 'waiting'));
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= total) return;
      const result = await collectHost(index, specs[index]!, options, (phase) => report(index, phase));
      results[index] = result;
      finished++;
      report(index, result.ok ? 'done' : 'failed', result.error);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return results;
}

async function collectHost(index: number, spec: HostSpec, options: CollectOptions, phase: (p: HostPhase) => void): Promise<HostResult> {
  const started = Date.now();
  const log = new HostLog();
  const result: HostResult = {
    index,
    spec,
    label: hostLabel(spec),
    ok: false,
    entries: [],
    integrity: 'unknown',
    integrityDetail: null,
    warnings: [],
    log: log.lines,
    collectedAt: new Date(started).toISOString(),
    durationMs: 0,
  };
  const timeoutMs = options.hostTimeoutMs ?? 120_000;
  let target: Target | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  // Timing out or cancelling closes the connection, which ends whatever runner call is under way.
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      target?.dispose();
      reject(
        new Cancelled(
          `${result.label} did not finish within ${Math.round(timeoutMs / 1000)} s; its connection was closed. Check the host, or raise the limit (--timeout).`,
          'timeout',
        ),
      );
    }, timeoutMs);
    onAbort = () => {
      target?.dispose();
      reject(new Cancelled(`The collection was cancelled before ${result.label} was read.`, 'cancelled'));
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  try {
    await Promise.race([readHost(spec, options, log, result, phase, (t) => (target = t)), stopped]);
    result.ok = true;
  } catch (e) {
    result.ok = false;
    result.error = errorMessage(e);
    // By brand, not instanceof: an SshError comes from dist/ssh.js, with its own copy of the classes.
    result.errorCode = isCodedError(e) ? e.code : 'error';
    if (result.integrity === 'unknown' && result.integrityDetail === null) result.integrityDetail = `not checked: ${result.error}`;
    log.error(result.error);
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    target?.dispose();
    result.durationMs = Date.now() - started;
  }
  // A copy: after a time-out the abandoned read may still settle and must not change what was reported.
  return { ...result, warnings: [...result.warnings], log: [...result.log] };
}

async function readHost(
  spec: HostSpec,
  options: CollectOptions,
  log: HostLog,
  result: HostResult,
  phase: (p: HostPhase) => void,
  setTarget: (t: Target) => void,
): Promise<void> {
  if (options.signal?.aborted) throw new Cancelled(`The collection was cancelled before ${result.label} was read.`, 'cancelled');
  phase('connecting');
  const admin = spec.protectedMode && options.admin ? options.admin : undefined;
  const login: HostSpec = admin ? { ...spec, user: admin, identityFile: undefined } : spec;
  let target: Target;
  if (options.openTarget) {
    target = await options.openTarget(login, log);
    setTarget(target);
  } else {
    const ssh = sshTargetFor(login, options, log);
    setTarget(ssh);
    target = ssh;
    await ssh.connect();
  }

  phase('reading');
  const runner = admin
    ? spec.runnerCommand && !spec.runnerCommand.startsWith('sudo ')
      ? spec.runnerCommand
      : await adminRunner(target)
    : runnerCommandFor(spec);
  await checkRunner(target, runner, result.label);
  const client = new RunnerClient({
    target,
    environmentId: spec.environment ?? '',
    runnerSource: '',
    environmentSource: '',
    // Read-only: the runner is used where it is and nothing is uploaded or set up, whatever the VM's mode.
    protectedMode: true,
    protectedRunnerCommand: runner,
    logger: log,
  });
  let status = await client.ensureRunnerSetUp();
  if (options.archive !== false && status.state === 'ended' && status.aggregate === null) {
    // The aggregate is recorded when the session ends; a session that ran out at its deadline has none yet.
    try {
      await client.aggregate();
      status = (await client.status()).status;
    } catch (e) {
      result.warnings.push(`No aggregate recorded on ${result.label} (${errorMessage(e)}).`);
    }
  }
  result.status = status;
  const offset = client.clock.best();
  if (offset) {
    result.clockOffsetMs = offset.offsetMs;
    result.clockRttMs = offset.rttMs;
  }
  if (spec.environment && status.environment.id !== spec.environment) {
    result.warnings.push(`${result.label} holds environment "${status.environment.id}", but ${spec.source} expects "${spec.environment}".`);
  }
  if (spec.protectedMode && status.mode !== 'protected') {
    result.warnings.push(
      `${spec.source} says the VM is protected, but its runner reports ${status.mode} mode: the participant could have edited the score log.`,
    );
  }
  result.entries = await client.log(0);

  phase('verifying');
  let verify = await client.verify();
  if (verify.intact && verify.entries !== result.entries.length) {
    // A scoring job that finished between the two reads added an entry: read both once more.
    result.entries = await client.log(0);
    verify = await client.verify();
  }
  result.verify = verify;
  if (!verify.intact) {
    result.integrity = 'broken';
    result.integrityDetail = verify.reason ?? `the runner reports the log does not verify (first bad line ${verify.first_bad ?? '?'})`;
  } else if (verify.entries !== result.entries.length) {
    result.integrity = 'broken';
    result.integrityDetail = `the runner verified ${verify.entries} entries but listed ${result.entries.length}`;
  } else {
    result.integrity = 'intact';
    result.integrityDetail = null;
  }
  if (result.entries.some((e) => e.hidden)) await readHidden(client, result, spec.protectedMode && !admin);
  // The live view reads only what it shows; the archive, the session record and the kept solutions are collect's.
  if (options.archive === false) return;
  result.rawLog = await client.export('jsonl');
  await readParticipantSide(client, result, options.allSolutions === true);
}

/**
 * The session record and the kept solutions. A runner from before them answers neither: that is noted,
 * never a failure of the host; a record that does not verify is a warning like a broken score log.
 */
async function readParticipantSide(client: RunnerClient, result: HostResult, all: boolean): Promise<void> {
  try {
    result.records = await client.records();
    if (!result.records.intact) result.warnings.push(`The session record of ${result.label} is NOT intact: ${result.records.reason ?? 'unknown problem'}.`);
  } catch (e) {
    result.warnings.push(`No session record read from ${result.label} (${errorMessage(e)}).`);
  }
  const counted = result.status?.counted?.index;
  const wanted = result.entries.filter((e) => (all || e.index === counted) && e.snapshot && 'id' in e.snapshot);
  const byId = new Map<string, Buffer>();
  result.solutions = new Map();
  for (const e of wanted) {
    const id = (e.snapshot as { id: string }).id;
    try {
      if (!byId.has(id)) byId.set(id, await client.exportSnapshot(id));
      result.solutions.set(e.index, byId.get(id)!);
    } catch (err) {
      result.warnings.push(`The kept solution of run ${e.index + 1} on ${result.label} could not be read: ${errorMessage(err)}.`);
    }
  }
}

/**
 * The hidden scores, for the organiser. The participant's sudo rule is refused them, so a protected VM read over
 * the participant's login gives none: that is a warning naming --admin, never a failure of the host.
 */
async function readHidden(client: RunnerClient, result: HostResult, overParticipant: boolean): Promise<void> {
  try {
    result.hidden = await client.hidden();
  } catch (e) {
    const how = overParticipant ? " On a protected VM they are read over the administrator's login: give --admin USER." : '';
    result.warnings.push(`The hidden scores of ${result.label} were not read (${errorMessage(e)}).${how}`);
    return;
  }
  const broken = result.hidden.hidden.filter((h) => !h.intact);
  if (broken.length) {
    result.warnings.push(
      `${broken.length} hidden score record(s) of ${result.label} are missing or do not match the score log (run ${broken[0]!.index + 1}: ${broken[0]!.problem ?? 'unknown problem'}); they count as no score.`,
    );
  }
}

/** The runner command over the administrator's login: as root directly, or through their own sudo. */
export async function adminRunner(target: Target): Promise<string> {
  const id = await target.exec('id -u');
  if (id.code !== 0) throw new SessionError(`Could not run "id -u" on ${target.label}: ${(id.stderr || id.stdout).trim()}`, 'vm');
  if (id.stdout.trim() === '0') return INSTALLED_RUNNER;
  const sudo = await target.exec('sudo -n true');
  if (sudo.code !== 0) {
    throw new SessionError(
      `${target.label} is not an administrator login: sudo needs a password or is not allowed there (${(sudo.stderr || sudo.stdout).trim().slice(0, 200)}). Give --admin root, or a user with passwordless sudo.`,
      'privileges',
    );
  }
  return `sudo -n ${INSTALLED_RUNNER}`;
}

/** Asks the runner for its version first, so a missing or unusable runner is named for the organiser. */
async function checkRunner(target: Target, runner: string, label: string): Promise<void> {
  const r = await target.exec(`${runner} --version`);
  const version = r.code === 0 ? r.stdout.trim().split(/\s+/).pop() : undefined;
  if (version === RUNNER_VERSION) return;
  if (version !== undefined) {
    throw new SessionError(
      `The runner on ${label} is version ${version}; this tool reads version ${RUNNER_VERSION}. Use the matching release of the organiser tool.`,
      'runner-version',
    );
  }
  const said = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ').slice(0, 300);
  throw new SessionError(
    `No runner answered on ${label} to "${runner} --version" (exit ${r.code ?? r.signal ?? 'unknown'}${said ? `: ${said}` : ''}). ` +
      'Is a session set up on this VM? For a protected VM set "protected" (or its runner_command); for another layout give runner_command.',
    'runner-missing',
  );
}
