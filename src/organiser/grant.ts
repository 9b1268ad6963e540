// Giving a participant time back, on the record: `extend` moves the deadline by N minutes, and
// `infrastructure-pause` counts a stretch of clock time when the infrastructure failed as paused. Both are
// done by the VM's runner over the administrator's login (root, or the administrator's own sudo), never
// through the participant's sudo rule, which the runner refuses for them. On an unprotected VM the runner
// home is the participant's, so the grant is made over their login, and the reply says what that means.
import * as z from '../core/zod';
import { SessionError, errorMessage } from '../core/errors';
import type { Logger } from '../core/logger';
import { parseRunnerJson, statusSchema, type Grant, type RunnerStatus } from '../core/runnerProtocol';
import { shellQuote, type Target } from '../core/target';
import { adminRunner, sshTargetFor, type CollectOptions } from './collect';
import { hostLabel, runnerCommandFor, type HostSpec } from './hosts';

export type GrantRequest = { kind: 'extend'; minutes: number; reason: string } | { kind: 'infrastructure-pause'; from: string; to: string; reason: string };

export const MAX_EXTEND_MINUTES = 24 * 60;
export const REASON_LIMIT = 500;
const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;

/** A grant that could not be made: the message says what is wrong and what to do. */
export class GrantError extends SessionError {
  constructor(message: string, code: string) {
    super(message, code, false);
    this.name = 'GrantError';
  }
}

/** Checks a request before anything is sent; returns the problems (none means it can be sent). */
export function grantRequestProblems(r: GrantRequest): string[] {
  const problems: string[] = [];
  const reason = r.reason.trim();
  if (!reason) problems.push('--reason needs a text: say why the time is given back (it is recorded, and the participant sees it).');
  else if (reason.length > REASON_LIMIT) problems.push(`--reason is ${reason.length} characters long; keep it within ${REASON_LIMIT}.`);
  if (r.kind === 'extend') {
    if (!Number.isFinite(r.minutes) || r.minutes <= 0 || r.minutes > MAX_EXTEND_MINUTES) {
      problems.push(`--minutes must be more than 0 and at most ${MAX_EXTEND_MINUTES} (a day), not ${r.minutes}.`);
    }
  } else {
    for (const [flag, value] of [
      ['--from', r.from],
      ['--to', r.to],
    ] as const) {
      if (!ISO_WITH_ZONE.test(value) || Number.isNaN(Date.parse(value)))
        problems.push(`${flag} must be an ISO 8601 time with its zone, e.g. 2026-03-01T10:15:00Z, not "${value}".`);
    }
    if (problems.length === 0 && Date.parse(r.to) <= Date.parse(r.from)) problems.push(`--to (${r.to}) must be after --from (${r.from}).`);
  }
  return problems;
}

/** The runner's arguments for a request. */
export function grantArguments(r: GrantRequest): string[] {
  const args = r.kind === 'extend' ? ['extend', '--minutes', String(r.minutes)] : ['infrastructure-pause', '--from', r.from, '--to', r.to];
  return [...args, '--reason', r.reason.trim(), '--json'];
}

export interface GrantOptions extends Pick<CollectOptions, 'connectTimeoutMs' | 'knownHostsFiles' | 'identityFiles' | 'agent'> {
  /** The administrator's login on protected VMs (root, or a user with passwordless sudo). */
  admin?: string;
  /** Opens the connection; default SSH as collect connects, with the login above. */
  openTarget?: (spec: HostSpec, logger: Logger) => Promise<Target>;
  logger?: Logger;
}

export interface GrantOutcome {
  /** user@host:port the grant was made over. */
  label: string;
  mode: RunnerStatus['mode'];
  /** The grant as the runner recorded it (the last of the session's grants). */
  grant: Grant;
  status: RunnerStatus;
  /** What an unprotected VM's grant means, from the runner. */
  note?: string;
}

/** The runner answers a grant with the status, plus a note in unprotected mode. */
const grantReplySchema = statusSchema.extend({ note: z.string().optional() });

const quietLogger: Logger = { info() {}, warn() {}, error() {} };

/** Grants the time on one VM and returns what the runner recorded. */
export async function grantTime(spec: HostSpec, request: GrantRequest, o: GrantOptions = {}): Promise<GrantOutcome> {
  const problems = grantRequestProblems(request);
  if (problems.length) throw new GrantError(problems.join(' '), 'usage');
  if (spec.protectedMode && !o.admin) {
    throw new GrantError(
      `${spec.source} is a protected VM: time is given back over the administrator's login, never the participant's. Give --admin USER (root, or a user with passwordless sudo).`,
      'usage',
    );
  }
  const login: HostSpec = spec.protectedMode ? { ...spec, user: o.admin!, identityFile: undefined } : spec;
  const label = hostLabel(login);
  const logger = o.logger ?? quietLogger;
  let target: Target | undefined;
  try {
    if (o.openTarget) target = await o.openTarget(login, logger);
    else {
      const ssh = sshTargetFor(login, o, logger);
      target = ssh;
      await ssh.connect();
    }
    const runner = spec.protectedMode
      ? spec.runnerCommand && !spec.runnerCommand.startsWith('sudo ')
        ? spec.runnerCommand
        : await adminRunner(target)
      : runnerCommandFor(spec);
    const command = `${runner} ${grantArguments(request).map(shellQuote).join(' ')}`;
    const r = await target.exec(command);
    const parsed = parseRunnerJson(grantReplySchema, r.stdout, request.kind);
    if (!parsed.ok) {
      const said = r.stdout.trim() ? '' : ` (exit ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' ').slice(0, 300)})`;
      throw new GrantError(`${label}: ${parsed.error}${said}`, r.code === 4 ? 'refused' : 'runner');
    }
    const status = parsed.value;
    const grant = status.grants?.at(-1);
    if (!grant)
      throw new GrantError(
        `${label}: the runner answered without the grant; its version may not know "${request.kind}". Update the runner on the VM (prepare it again).`,
        'runner-version',
      );
    return { label, mode: status.mode, grant, status, note: status.note };
  } catch (e) {
    if (e instanceof GrantError) throw e;
    throw new GrantError(`Could not give time back on ${label}: ${errorMessage(e)}. Nothing was recorded; try again once the VM can be reached.`, 'connection');
  } finally {
    target?.dispose();
  }
}

/** One line for the organiser: what was granted, the new deadline, who and why. */
export function grantSummary(spec: HostSpec, g: GrantOutcome): string[] {
  const minutes = Math.round((g.grant.seconds / 60) * 100) / 100;
  const what = g.grant.kind === 'extend' ? `${minutes} min more` : `${minutes} min for the infrastructure pause ${g.grant.from} to ${g.grant.to}`;
  const lines = [
    `${spec.participant} (${g.label}): granted ${what}. Deadline now ${g.status.deadline ?? '-'} (${g.status.state.replace('_', ' ')}); ${Math.round(((g.status.granted_s ?? 0) / 60) * 100) / 100} min given back in all. Recorded by ${g.grant.by}: ${g.grant.reason}`,
  ];
  if (g.note) lines.push(`Note: ${g.note}`);
  return lines;
}
