// The participant's session as the extension sees it: status, score log and the running job, kept in
// step with the runner, and re-attached after every reconnection. No `vscode` here.
import { localDeadlineMs, secondsLeft } from './clock';
import { SessionError, errorMessage, isCodedError } from './errors';
import type { Logger } from './logger';
import type { RunnerStatus, ScoreLogEntry } from './runnerProtocol';
import { JobInterruptedError, type RunnerClient } from './runnerClient';
import type { ConnectionState } from './target';
import { DEFAULT_COUNTDOWN } from './timeLeft';
import { buildViewModel } from './viewModel';
import { JOB_OUTPUT_VIEW_LIMIT, type CountdownView, type Snapshot } from './webviewProtocol';

export interface RunningJob {
  jobId: string;
  startedIso: string;
  output: string;
  /** Byte offset in the job's output file up to which output has been received. */
  offset: number;
  /** Whether this client is following it right now. */
  following: boolean;
}

export interface SessionEvents {
  /** Something in the snapshot changed. */
  onChange(): void;
  onJobOutput(jobId: string, text: string): void;
  /** A new score log entry arrived (from this client's job or another's). */
  onEntry(entry: ScoreLogEntry): void;
}

type Listener<T extends unknown[]> = (...args: T) => void;

export class Session {
  status: RunnerStatus | undefined;
  entries: ScoreLogEntry[] = [];
  job: RunningJob | undefined;
  connection: ConnectionState;
  logProblem: string | null = null;
  private listeners: { [K in keyof SessionEvents]: Listener<Parameters<SessionEvents[K]>>[] } = {
    onChange: [],
    onJobOutput: [],
    onEntry: [],
  };
  private disposed = false;
  private refreshing: Promise<void> | undefined;
  private stateSubscription: { dispose(): void };
  private runnerEvents: { dispose(): void };

  constructor(
    readonly client: RunnerClient,
    private readonly logger: Logger,
  ) {
    this.connection = client.target.state;
    this.stateSubscription = client.target.onStateChange((state) => this.onConnectionState(state));
    // A new entry or a session change made elsewhere (another window, the terminal) shows at once.
    this.runnerEvents = client.onRunnerEvent((event) => {
      if ((event.type === 'entry' || event.type === 'session') && this.status && !this.disposed) {
        void this.refresh().catch((e) => this.logger.warn(`Could not refresh after a change on the VM: ${errorMessage(e)}`));
      }
    });
  }

  on<K extends keyof SessionEvents>(event: K, listener: SessionEvents[K]): { dispose(): void } {
    const list = this.listeners[event] as unknown as Listener<Parameters<SessionEvents[K]>>[];
    list.push(listener as never);
    return { dispose: () => list.splice(list.indexOf(listener as never) >>> 0, 1) };
  }

  private emit<K extends keyof SessionEvents>(event: K, ...args: Parameters<SessionEvents[K]>): void {
    for (const listener of [...this.listeners[event]]) {
      try {
        (listener as (...a: Parameters<SessionEvents[K]>) => void)(...args);
      } catch (e) {
        this.logger.error(`A ${event} listener failed: ${errorMessage(e)}`);
      }
    }
  }

  /** Sets the runner up on the VM, reads status and log, and re-attaches a scoring job that is running. */
  async open(): Promise<void> {
    // Preparing answers with a fresh status (and a clock-offset sample): the refresh only adds the log.
    this.status = await this.client.ensureRunnerSetUp();
    const prepared = this.status;
    this.refreshing ??= this.doRefresh(prepared).finally(() => (this.refreshing = undefined));
    await this.refreshing;
  }

  /** Re-reads status (and the clock offset) and any new log entries; follows a job it does not follow yet. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async doRefresh(known?: RunnerStatus): Promise<void> {
    const status = known ?? (await this.client.status()).status;
    await this.fetchNewEntries();
    // A status read before the job's entry arrived (by a refresh that was under way when the entry came)
    // must not bring the finished job back as running, nor close Score now again, not even for a moment:
    // it is taken only with the log read after it, and without the job once the job's entry is there.
    const running = status.job && !this.entries.some((e) => e.job_id === status.job?.job_id) ? status.job : null;
    this.status = running === null && status.job ? { ...status, job: null } : status;
    if (!status.log_intact) {
      // Verified on every refresh while broken, so the reason always names the current first bad entry.
      const verdict = await this.client.verify();
      this.logProblem = verdict.reason ?? 'the runner reports that the log does not verify';
    } else if (status.entries < this.entries.length) {
      // A chain cut short still verifies; what this window has already seen does not vanish.
      this.logProblem = `the VM's score log now has ${status.entries} entries, but this window has already seen ${this.entries.length}: entries were removed`;
    } else {
      this.logProblem = null;
    }
    // Asked again: the job's entry may have come through its follower while verify() was awaited.
    if (running && this.job?.jobId !== running.job_id && !this.entries.some((e) => e.job_id === running.job_id)) {
      this.job = { jobId: running.job_id, startedIso: running.started_at, output: '', offset: 0, following: false };
    }
    if (running === null && this.job && !this.job.following) this.job = undefined;
    this.emit('onChange');
    if (this.job && !this.job.following) void this.follow(this.job.jobId, this.job.offset).catch(() => undefined);
  }

  private async fetchNewEntries(): Promise<void> {
    const fresh = await this.client.log(this.entries.length);
    for (const entry of mergeEntries(this.entries, fresh)) this.emit('onEntry', entry);
  }

  private addEntry(entry: ScoreLogEntry): void {
    for (const added of mergeEntries(this.entries, [entry])) this.emit('onEntry', added);
  }

  async start(): Promise<void> {
    this.status = await this.client.start();
    await this.refresh();
  }

  /** Runs "Score now" to the end, across reconnections, and returns the log entry. */
  async scoreNow(): Promise<ScoreLogEntry> {
    const reason = this.scoreDisabledReason();
    if (reason) throw new SessionError(reason, 'score-disabled');
    let entry: ScoreLogEntry;
    try {
      entry = await this.client.score(this.jobHandlers());
    } catch (e) {
      if (!(e instanceof JobInterruptedError)) throw e;
      // This call's stream is gone, so nothing follows the job any more: pick it up where the stream stopped.
      if (this.job?.jobId === e.jobId) this.job.following = false;
      entry = await this.follow(e.jobId, e.outputOffset);
    } finally {
      if (this.job) this.job.following = false;
    }
    return this.finishJob(entry);
  }

  /**
   * Follows a job until its entry arrives, waiting for the connection to come back as often as it drops.
   * Only a non-retryable failure (the connection failed for good) ends it early.
   */
  private async follow(jobId: string, offset: number): Promise<ScoreLogEntry> {
    if (this.job?.jobId === jobId && this.job.following) throw new SessionError('Already following this job.', 'following');
    const known = this.entries.find((e) => e.job_id === jobId);
    if (known) return known; // another follower already brought its entry
    this.job ??= { jobId, startedIso: new Date().toISOString(), output: '', offset, following: true };
    this.job.following = true;
    let from = offset;
    try {
      for (;;) {
        try {
          const entry = await this.client.attach(jobId, from, this.jobHandlers());
          return this.finishJob(entry);
        } catch (e) {
          if (!(e instanceof JobInterruptedError) && !(isCodedError(e) && e.retryable)) throw e;
          from = e instanceof JobInterruptedError ? e.outputOffset : (this.job?.offset ?? from);
          this.logger.warn(`${errorMessage(e)} Re-attaching when the connection is back.`);
          await this.waitForConnection();
        }
      }
    } finally {
      if (this.job?.jobId === jobId) this.job.following = false;
    }
  }

  private finishJob(entry: ScoreLogEntry): ScoreLogEntry {
    if (this.job?.jobId === entry.job_id) this.job = undefined;
    // The job is over: Score now is open again at once, not only after the next status read.
    if (this.status?.job?.job_id === entry.job_id) this.status = { ...this.status, job: null };
    this.addEntry(entry);
    void this.refresh().catch((e) => this.logger.warn(`Could not refresh after the scoring job: ${errorMessage(e)}`));
    this.emit('onChange');
    return entry;
  }

  private jobHandlers() {
    let streamJobId: string | undefined;
    return {
      onJob: (job: { job_id: string; started_at: string; output_offset: number }) => {
        streamJobId = job.job_id;
        // A second follower of a job (after a reconnection both may re-attach) can start its stream after
        // the first one brought the entry: the job is over and must not show as running again.
        if (this.entries.some((e) => e.job_id === job.job_id)) return;
        if (this.job?.jobId !== job.job_id) {
          this.job = { jobId: job.job_id, startedIso: job.started_at, output: '', offset: job.output_offset, following: true };
        }
        this.job.following = true;
        this.emit('onChange');
      },
      onOutput: (text: string, offset: number) => {
        if (!this.job || this.job.jobId !== streamJobId) return;
        this.job.offset = offset;
        this.job.output = (this.job.output + text).slice(-JOB_OUTPUT_VIEW_LIMIT);
        this.emit('onJobOutput', this.job.jobId, text);
      },
    };
  }

  private waitForConnection(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (state: ConnectionState) => {
        if (state.kind === 'connected') {
          sub.dispose();
          resolve();
        } else if (state.kind === 'failed' || this.disposed) {
          sub.dispose();
          reject(new SessionError(`The connection failed: ${state.kind === 'failed' ? state.reason : 'closed'}`, 'connection-failed'));
        }
      };
      const sub = this.client.target.onStateChange(check);
      check(this.client.target.state);
    });
  }

  private onConnectionState(state: ConnectionState): void {
    this.connection = state;
    this.emit('onChange');
    if (state.kind === 'connected' && this.status) {
      // Back online: the offset and the log may have moved while we were away.
      void this.refresh().catch((e) => this.logger.warn(`Could not refresh after reconnecting: ${errorMessage(e)}`));
    }
  }

  async pause(): Promise<void> {
    this.status = await this.client.pause();
    this.emit('onChange');
  }

  async resume(): Promise<void> {
    this.status = await this.client.resume();
    this.emit('onChange');
  }

  /**
   * Submits the answer (end scoring): the runner records it, scores it once as the session's final entry and
   * ends the session. The scoring run is followed to its entry across reconnections, as Score now's is.
   */
  async submit(answer: string): Promise<ScoreLogEntry> {
    const reason = this.scoreDisabledReason();
    if (reason) throw new SessionError(reason, 'score-disabled');
    let entry: ScoreLogEntry;
    try {
      entry = await this.client.submit(answer, this.jobHandlers());
    } catch (e) {
      if (!(e instanceof JobInterruptedError)) throw e;
      if (this.job?.jobId === e.jobId) this.job.following = false;
      entry = await this.follow(e.jobId, e.outputOffset);
    } finally {
      if (this.job) this.job.following = false;
    }
    const done = this.finishJob(entry);
    await this.refresh();
    return done;
  }

  async end(): Promise<void> {
    this.status = await this.client.end(this.jobHandlers());
    this.job = undefined;
    await this.refresh();
  }

  /** Seconds left now, from the VM's deadline and the measured clock offset. */
  secondsLeft(nowMs = Date.now()): number | null {
    const s = this.status;
    if (!s || s.state === 'not_started') return null;
    if (s.state !== 'running' || !s.deadline) return s.seconds_left === null ? null : Math.max(0, s.seconds_left);
    return secondsLeft(localDeadlineMs(s.deadline, this.client.clock.offsetMs), nowMs);
  }

  /** Why "Score now" cannot be used right now, in the participant's words; null when it can. */
  scoreDisabledReason(nowMs = Date.now()): string | null {
    return scoreDisabledReason(this.status, this.connection, this.job !== undefined, this.secondsLeft(nowMs));
  }

  /** The snapshot the views show (built by src/core/viewModel.ts), with the given countdown thresholds. */
  snapshot(nowMs = Date.now(), countdown: CountdownView = DEFAULT_COUNTDOWN): Snapshot {
    return buildViewModel({ session: this, countdown, nowMs });
  }

  dispose(): void {
    this.disposed = true;
    this.stateSubscription.dispose();
    this.runnerEvents.dispose();
    this.client.dispose();
    this.client.target.dispose();
  }
}

/**
 * Adds fresh entries to a list kept in index order without duplicates (a refresh and a job's stream can
 * both bring the same entry) and returns the ones it added. Entries nearly always come in order, and then
 * each costs one comparison with the last, so a 10,000-entry log is taken in at once.
 */
export function mergeEntries(entries: ScoreLogEntry[], fresh: readonly ScoreLogEntry[]): ScoreLogEntry[] {
  const added: ScoreLogEntry[] = [];
  for (const entry of fresh) {
    const last = entries[entries.length - 1];
    if (last && entry.index <= last.index) {
      if (entries.some((e) => e.index === entry.index)) continue;
      entries.push(entry);
      entries.sort((a, b) => a.index - b.index);
    } else {
      entries.push(entry);
    }
    added.push(entry);
  }
  return added;
}

export function scoreDisabledReason(status: RunnerStatus | undefined, connection: ConnectionState, jobRunning: boolean, left: number | null): string | null {
  if (connection.kind !== 'connected') {
    return connection.kind === 'reconnecting' || connection.kind === 'connecting' ? 'Disconnected: reconnecting to the VM…' : 'Not connected to the VM.';
  }
  if (!status) return 'Reading the session…';
  if (status.state === 'not_started') return 'Start the session first.';
  if (status.state === 'paused') return 'The session is paused: resume it to score.';
  if (status.state === 'ended') {
    // The runner ends a session at its deadline by itself (ended_at = deadline); an early end is before it.
    const byDeadline = status.ended_at !== null && status.deadline !== null && Date.parse(status.ended_at) >= Date.parse(status.deadline);
    return byDeadline ? 'Time is up: scoring is closed.' : 'The session has ended: scoring is closed.';
  }
  if (left !== null && left <= 0) return 'Time is up: scoring is closed.';
  if (jobRunning || status.job) return 'A scoring job is running.';
  return null;
}
