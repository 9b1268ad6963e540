// The live view of a study: one row per VM from what collect read, kept across refreshes (a host that
// does not answer keeps its last known values, marked stale), and the flags that call for an organiser.
// Pure: no SSH, no terminal, no vscode; the clock is passed in.
import { normalise, countedEntry, hasScore, isNoScore, organiserEntries } from '../core/scores';
import type { RunnerStatus, ScoreLogEntry } from '../core/runnerProtocol';
import type { HostResult, Integrity } from './collect';
import type { HostSpec } from './hosts';

export type WatchState = RunnerStatus['state'];

export interface ScorePair {
  score: number;
  /** (y - ys) / (yr - ys); null when the environment is not known. */
  normalised: number | null;
  /** Session seconds (pauses excluded) when the run started. */
  elapsed_s: number;
}

export interface WatchRow {
  index: number;
  participant: string;
  /** user@host:port */
  host: string;
  source: string;
  environment: string | null;
  environmentTitle: string | null;
  /** null until the host has been read once. */
  state: WatchState | null;
  deadline: string | null;
  /** Seconds left when the host was read (the VM's own count); see secondsLeftAt for now. */
  secondsLeft: number | null;
  /** This machine's clock when the status was read. */
  readAtMs: number | null;
  timeLimitS: number | null;
  grantedS: number | null;
  runs: number;
  last: ScorePair | null;
  best: ScorePair | null;
  /** The score that counts under the environment's aggregation (best or last). */
  counted: ScorePair | null;
  /** Whether last, best and counted are hidden scores (scoring.visible hides them from the participant). */
  hiddenScores: boolean;
  job: { id: string; startedAt: string; runningS: number } | null;
  scoringTimeoutS: number | null;
  integrity: Integrity;
  integrityDetail: string | null;
  /** VM clock minus this machine's (ms); null before the first read. */
  clockOffsetMs: number | null;
  /** The last time the host answered (this machine's clock, ISO). */
  lastContact: string | null;
  /** Why the last read failed; null when it succeeded. The other fields are then from the read before. */
  error: string | null;
  /** Entries at the end of the log in a row that gave no score. */
  failedInARow: number;
  /** Entries whose run started after the deadline (they do not count). */
  runsAfterDeadline: number;
  warnings: string[];
}

export type FlagCode = 'unreachable' | 'log-not-intact' | 'clock-offset' | 'failed-runs' | 'not-started' | 'runs-after-deadline' | 'job-overrun';

export const FLAG_CODES: readonly FlagCode[] = [
  'unreachable',
  'log-not-intact',
  'clock-offset',
  'failed-runs',
  'not-started',
  'runs-after-deadline',
  'job-overrun',
];

export interface Flag {
  code: FlagCode;
  participant: string;
  host: string;
  source: string;
  /** What is wrong and what to do, in one sentence or two. */
  message: string;
  /** When this flag was first raised for this host (it stays as long as the condition lasts). */
  since: string;
}

export interface FlagLimits {
  /** A host not reached for longer than this is flagged (default 300 s). */
  unreachableAfterS: number;
  /** A VM clock further off than this is flagged (default 30 s). */
  clockOffsetS: number;
  /** This many runs in a row without a score are flagged (default 3). */
  failedRunsInARow: number;
  /** When the study started (ms); with notStartedAfterS, a session not started by then is flagged. */
  studyStartMs: number;
  /** Default 3600 s: an hour after the study's start. */
  notStartedAfterS: number;
  /** A job running longer than the scorer's timeout plus this is flagged (default 60 s). */
  jobGraceS: number;
}

export const DEFAULT_LIMITS: Omit<FlagLimits, 'studyStartMs'> = {
  unreachableAfterS: 300,
  clockOffsetS: 30,
  failedRunsInARow: 3,
  notStartedAfterS: 3600,
  jobGraceS: 60,
};

function tidy(n: number): number {
  return Number(n.toPrecision(12));
}

function pair(e: (ScoreLogEntry & { score: number }) | undefined, env: RunnerStatus['environment'] | undefined): ScorePair | null {
  if (!e) return null;
  return { score: e.score, normalised: env ? tidy(normalise(e.score, env.starting_score, env.reference_score)) : null, elapsed_s: e.elapsed_s };
}

/** Trailing entries that gave no score: a scorer or a solution that keeps failing (a run that scored unseen is not one). */
export function failedInARow(entries: readonly ScoreLogEntry[]): number {
  let n = 0;
  for (let i = entries.length - 1; i >= 0 && isNoScore(entries[i]!); i--) n++;
  return n;
}

/** A row for a host that has not been read yet. */
export function emptyRow(index: number, spec: HostSpec, label: string): WatchRow {
  return {
    index,
    participant: spec.participant,
    host: label,
    source: spec.source,
    environment: spec.environment ?? null,
    environmentTitle: null,
    state: null,
    deadline: null,
    secondsLeft: null,
    readAtMs: null,
    timeLimitS: null,
    grantedS: null,
    runs: 0,
    last: null,
    best: null,
    counted: null,
    hiddenScores: false,
    job: null,
    scoringTimeoutS: null,
    integrity: 'unknown',
    integrityDetail: null,
    clockOffsetMs: null,
    lastContact: null,
    error: null,
    failedInARow: 0,
    runsAfterDeadline: 0,
    warnings: [],
  };
}

/**
 * The row after one read of a host. A failed read keeps what the read before found (marked by `error`),
 * so the organiser still sees the last known state of a host that dropped out.
 */
export function updateRow(previous: WatchRow, r: HostResult, readAtMs: number): WatchRow {
  if (!r.ok || !r.status) {
    return { ...previous, error: r.error ?? 'the host could not be read', warnings: r.warnings };
  }
  const s = r.status;
  const env = s.environment;
  const vmNowMs = Date.parse(s.now);
  const jobStarted = s.job ? Date.parse(s.job.started_at) : NaN;
  // The organiser sees the hidden scores where there are any: they are what counts.
  const scores = organiserEntries(r.entries, r.hidden);
  const lastScored = [...scores].reverse().find(hasScore);
  return {
    ...previous,
    environment: env.id,
    environmentTitle: env.title,
    state: s.state,
    deadline: s.deadline,
    secondsLeft: s.seconds_left,
    readAtMs,
    timeLimitS: env.time_limit_s,
    grantedS: s.granted_s ?? null,
    runs: r.entries.length,
    last: pair(lastScored, env),
    best: pair(countedEntry(scores, env.direction, 'best'), env),
    counted: pair(countedEntry(scores, env.direction, env.aggregation), env),
    hiddenScores: r.entries.some((e) => e.hidden),
    job: s.job
      ? { id: s.job.job_id, startedAt: s.job.started_at, runningS: Number.isFinite(jobStarted) ? Math.max(0, (vmNowMs - jobStarted) / 1000) : 0 }
      : null,
    scoringTimeoutS: env.scoring_timeout_s,
    integrity: r.integrity,
    integrityDetail: r.integrityDetail,
    clockOffsetMs: r.clockOffsetMs ?? previous.clockOffsetMs,
    lastContact: new Date(readAtMs).toISOString(),
    error: null,
    failedInARow: failedInARow(r.entries),
    runsAfterDeadline: r.entries.filter((e) => !e.counts && e.kind === 'score').length,
    warnings: r.warnings,
  };
}

/** Seconds left at `nowMs` (this machine's clock): counts down while running, holds while paused. */
export function secondsLeftAt(row: WatchRow, nowMs: number): number | null {
  if (row.secondsLeft === null || row.readAtMs === null) return null;
  if (row.state !== 'running') return row.secondsLeft;
  return Math.max(0, row.secondsLeft - Math.max(0, nowMs - row.readAtMs) / 1000);
}

/** How long a running job has run at `nowMs`. */
export function jobRunningAt(row: WatchRow, nowMs: number): number | null {
  if (!row.job || row.readAtMs === null) return null;
  return row.job.runningS + Math.max(0, nowMs - row.readAtMs) / 1000;
}

function minutes(s: number): string {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/**
 * What needs an organiser in one row at `nowMs`, given when the watch began reading (`watchStartMs`, for a
 * host never reached). `since` comes from `previousSince` when the flag was already up.
 */
export function flagsFor(
  row: WatchRow,
  limits: FlagLimits,
  nowMs: number,
  watchStartMs: number,
  previousSince: ReadonlyMap<string, string> = new Map(),
): Flag[] {
  const flags: Flag[] = [];
  const raise = (code: FlagCode, message: string) => {
    const key = flagKey(row, code);
    flags.push({
      code,
      participant: row.participant,
      host: row.host,
      source: row.source,
      message,
      since: previousSince.get(key) ?? new Date(nowMs).toISOString(),
    });
  };
  if (row.error !== null) {
    const lastMs = row.lastContact ? Date.parse(row.lastContact) : watchStartMs;
    const away = (nowMs - lastMs) / 1000;
    if (away > limits.unreachableAfterS) {
      raise(
        'unreachable',
        `${row.lastContact ? `Not reached since ${row.lastContact} (${minutes(away)})` : `Never reached in ${minutes(away)}`}: ${row.error} Check the VM and its network; the participant may be unable to work.`,
      );
    }
  }
  if (row.integrity === 'broken') {
    raise(
      'log-not-intact',
      `The score log does not verify: ${row.integrityDetail ?? 'see "runner verify" on the VM'}. Keep the VM as it is and collect its log now.`,
    );
  }
  if (row.clockOffsetMs !== null && Math.abs(row.clockOffsetMs) > limits.clockOffsetS * 1000) {
    const s = row.clockOffsetMs / 1000;
    raise(
      'clock-offset',
      `The VM's clock is ${Math.abs(s).toFixed(1)} s ${s > 0 ? 'ahead of' : 'behind'} this machine's (limit ${limits.clockOffsetS} s). Check the VM's time synchronisation (timedatectl); times in its log are the VM's.`,
    );
  }
  if (row.failedInARow >= limits.failedRunsInARow) {
    raise('failed-runs', `The last ${row.failedInARow} scoring runs gave no score. The participant may be stuck, or the scorer broken on this VM.`);
  }
  if (row.state === 'not_started' && nowMs >= limits.studyStartMs + limits.notStartedAfterS * 1000) {
    raise(
      'not-started',
      `The session has not started ${minutes((nowMs - limits.studyStartMs) / 1000)} after the study's start (${new Date(limits.studyStartMs).toISOString()}). Is the participant there and able to connect?`,
    );
  }
  if (row.runsAfterDeadline > 0) {
    raise(
      'runs-after-deadline',
      `${row.runsAfterDeadline} scoring run${row.runsAfterDeadline === 1 ? '' : 's'} started after the deadline (${row.deadline ?? '?'}); they are logged and do not count.`,
    );
  }
  const running = jobRunningAt(row, nowMs);
  if (running !== null && row.scoringTimeoutS !== null && running > row.scoringTimeoutS + limits.jobGraceS) {
    raise(
      'job-overrun',
      `Scoring job ${row.job?.id ?? '?'} has run ${minutes(running)}, longer than the scorer's timeout (${minutes(row.scoringTimeoutS)}). The runner should have stopped it: look at the VM's processes and the job's output.`,
    );
  }
  return flags;
}

export function flagKey(row: Pick<WatchRow, 'participant' | 'host'>, code: FlagCode): string {
  return `${row.host}\u0000${row.participant}\u0000${code}`;
}

export interface StudySnapshot {
  /** This machine's clock when the refresh finished. */
  at: string;
  refresh: number;
  /** How long the refresh took (ms). */
  durationMs: number;
  rows: WatchRow[];
  flags: Flag[];
  counts: { hosts: number; reached: number; notStarted: number; running: number; paused: number; ended: number; unknown: number; flagged: number };
}

export function countRows(rows: readonly WatchRow[], flags: readonly Flag[]): StudySnapshot['counts'] {
  const flagged = new Set(flags.map((f) => `${f.host}\u0000${f.participant}`));
  return {
    hosts: rows.length,
    reached: rows.filter((r) => r.error === null && r.state !== null).length,
    notStarted: rows.filter((r) => r.state === 'not_started').length,
    running: rows.filter((r) => r.state === 'running').length,
    paused: rows.filter((r) => r.state === 'paused').length,
    ended: rows.filter((r) => r.state === 'ended').length,
    unknown: rows.filter((r) => r.state === null).length,
    flagged: flagged.size,
  };
}

/** The flags of every row, each keeping the time it was first raised. */
export function flagsForAll(rows: readonly WatchRow[], limits: FlagLimits, nowMs: number, watchStartMs: number, previous: readonly Flag[]): Flag[] {
  const since = new Map(previous.map((f) => [flagKey(f, f.code), f.since]));
  return rows.flatMap((r) => flagsFor(r, limits, nowMs, watchStartMs, since));
}

/** What the flags file holds: the flags now, for a script to act on. */
export function flagsFileJson(snapshot: StudySnapshot): string {
  return `${JSON.stringify(
    {
      format: 'rebench-watch-flags-1',
      generated_at: snapshot.at,
      refresh: snapshot.refresh,
      hosts: snapshot.counts.hosts,
      flags: snapshot.flags,
    },
    null,
    2,
  )}\n`;
}
