// The view model: the snapshot every view of the session shows (the status bar, the session view, the score
// history panel), built in one place from the session and the settings. The rules the views apply to it
// live beside it in timeLeft.ts and jobOutput.ts, which the webview imports too. Pure: no `vscode`, no DOM.
import { deadlineWarning } from './participant';
import { localDeadlineMs } from './clock';
import { appendCapped } from './jobOutput';
import { secondsLeftNow } from './timeLeft';
import type { RunnerStatus, ScoreLogEntry } from './runnerProtocol';
import { countedEntry } from './scores';
import type { ConnectionState } from './target';
import { JOB_OUTPUT_VIEW_LIMIT, type ConnectionView, type CountdownView, type SessionView, type Snapshot } from './webviewProtocol';

/** What of an open session the views show (src/core/session.ts's Session has all of it). */
export interface SessionSource {
  readonly status: RunnerStatus | undefined;
  readonly entries: readonly ScoreLogEntry[];
  readonly job: { jobId: string; startedIso: string; output: string } | undefined;
  readonly connection: ConnectionState;
  readonly logProblem: string | null;
  readonly client: { readonly target: { readonly label: string }; readonly clock: { readonly offsetMs: number } };
  secondsLeft(nowMs: number): number | null;
  scoreDisabledReason(nowMs: number): string | null;
}

export interface ViewModelInput {
  /** The open session, if any. */
  session: SessionSource | undefined;
  /** Without a session: whether a connection is being made, and to what ("this machine", "user@host"). */
  connecting?: boolean;
  target?: string | null;
  /**
   * Without a session: the last snapshot of a session that was left running when the connection to it was
   * closed (to connect elsewhere). Its clock runs on the VM, so its countdown goes on from its deadline.
   */
  leftRunning?: Snapshot;
  /** The countdown thresholds from the settings. */
  countdown: CountdownView;
  nowMs: number;
}

/**
 * The snapshot every view shows, built here and nowhere else: the status bar, the session view and the
 * score history panel are all painted from it, with the same thresholds and the same time left.
 */
export function buildViewModel(input: ViewModelInput): Snapshot {
  const { session, countdown, nowMs } = input;
  if (!session && input.leftRunning?.session) return leftRunningView(input.leftRunning, input, nowMs);
  if (!session) {
    const target = input.target ?? null;
    return {
      connection: {
        kind: input.connecting ? 'connecting' : 'disconnected',
        target,
        detail: input.connecting && target ? `Connecting to ${target}…` : 'Not connected. Connect to your VM, or try the demo on this machine.',
      },
      environment: null,
      session: null,
      job: null,
      entries: [],
      countedIndex: null,
      logIntact: true,
      logProblem: null,
      scoreDisabledReason: 'Not connected to the VM.',
      countdown,
    };
  }
  const s = session.status;
  const env = s?.environment;
  const counted = env ? countedEntry(session.entries, env.direction, env.aggregation) : undefined;
  const offsetMs = session.client.clock.offsetMs;
  return {
    connection: connectionView(session.connection, session.client.target.label),
    environment: env
      ? {
          id: env.id,
          title: env.title,
          version: env.version,
          direction: env.direction,
          aggregation: env.aggregation,
          startingScore: env.starting_score,
          referenceScore: env.reference_score,
          pausesAllowed: env.pauses_allowed,
          submit: env.submit ?? null,
          visible: env.visible ?? 'all',
        }
      : null,
    session: s
      ? {
          state: s.state,
          deadlineLocalMs: s.deadline ? localDeadlineMs(s.deadline, offsetMs) : null,
          secondsLeft: session.secondsLeft(nowMs),
          deadlineIso: s.deadline,
          startedIso: s.started_at,
          timeLimitS: workingTimeLimitS(s),
          clockOffsetMs: offsetMs,
          mode: s.mode,
          solutionDir: s.solution_dir,
          timeGiven: timeGivenView(s),
        }
      : null,
    job: session.job ? { jobId: session.job.jobId, startedIso: session.job.startedIso, output: session.job.output } : null,
    entries: session.entries as ScoreLogEntry[],
    countedIndex: counted?.index ?? null,
    logIntact: (s?.log_intact ?? true) && session.logProblem === null,
    logProblem: session.logProblem,
    scoreDisabledReason: session.scoreDisabledReason(nowMs),
    deadlineWarning: deadlineWarning(session.entries, session.secondsLeft(nowMs), s?.state === 'running'),
    countdown,
  };
}

/**
 * The session's working time with the organiser's extensions: where the chart puts the deadline and what the
 * time left counts down from. Infrastructure pauses are not working time, so they move the clock's deadline
 * but not this.
 */
export function workingTimeLimitS(s: RunnerStatus): number {
  return s.environment.time_limit_s + (s.grants ?? []).filter((g) => g.kind === 'extend').reduce((sum, g) => sum + g.seconds, 0);
}

/**
 * A session left running on a VM this window is no longer connected to: its countdown and history as last
 * seen, counted down from its deadline (the clock runs on the VM), and said to be not connected.
 */
function leftRunningView(last: Snapshot, input: ViewModelInput, nowMs: number): Snapshot {
  const session = last.session!;
  const where = last.connection.target ?? 'the VM';
  const goesOn = `Your session on ${where} goes on: its clock runs on the VM. Connect to it again to score.`;
  const target = input.target ?? null;
  const connecting = input.connecting && target !== null;
  return {
    ...last,
    connection: {
      kind: input.connecting ? 'connecting' : 'disconnected',
      target: input.connecting ? target : last.connection.target,
      detail: connecting ? `Connecting to ${target}… ${goesOn}` : `Not connected. ${goesOn}`,
    },
    session: { ...session, secondsLeft: secondsLeftNow(session, nowMs) },
    job: null,
    scoreDisabledReason: `Not connected to ${where}.`,
    deadlineWarning: null,
    countdown: input.countdown,
  };
}

/** The time given back, as the views show it: how much in all, and the latest grant with its reason. */
export function timeGivenView(s: RunnerStatus): SessionView['timeGiven'] {
  const latest = s.grants?.at(-1);
  if (!latest) return null;
  return {
    totalS: s.granted_s ?? latest.seconds,
    grants: s.grants!.length,
    latest: { kind: latest.kind, seconds: latest.seconds, reason: latest.reason, by: latest.by, at: latest.at },
  };
}

export function connectionView(state: ConnectionState, target: string | null): ConnectionView {
  switch (state.kind) {
    case 'connected':
      return { kind: 'connected', target, detail: `Connected to ${target}` };
    case 'connecting':
      return { kind: 'connecting', target, detail: `Connecting to ${target}…` };
    case 'reconnecting':
      return {
        kind: 'reconnecting',
        target,
        detail: `Connection lost (${state.reason}). Reconnecting in ${Math.ceil(state.nextRetryMs / 1000)} s (attempt ${state.attempt})…`,
      };
    case 'failed':
      return { kind: 'failed', target, detail: `Connection failed: ${state.reason}` };
    case 'disconnected':
      return { kind: 'disconnected', target, detail: state.reason ? `Disconnected: ${state.reason}` : 'Disconnected' };
  }
}

/**
 * The latest snapshot, kept on the host so a view that is re-opened (its document is destroyed while
 * hidden) gets everything at once, job output included.
 */
export class LatestSnapshot {
  private current: Snapshot | null = null;

  get value(): Snapshot | null {
    return this.current;
  }

  /** Stores a snapshot and returns what to send. */
  set(snapshot: Snapshot): Snapshot {
    const prev = this.current?.job;
    const job = snapshot.job;
    // Output only grows within a job: keep the deltas already received if this snapshot has less.
    if (prev && job && prev.jobId === job.jobId && prev.output.length > job.output.length) {
      snapshot = { ...snapshot, job: { ...job, output: prev.output } };
    }
    this.current = snapshot;
    return snapshot;
  }

  /** Adds output to the current job; false when the text belongs to another job (then send nothing). */
  appendJobOutput(jobId: string, text: string): boolean {
    const s = this.current;
    if (!s?.job || s.job.jobId !== jobId) return false;
    this.current = { ...s, job: { ...s.job, output: appendCapped(s.job.output, text, JOB_OUTPUT_VIEW_LIMIT) } };
    return true;
  }
}
