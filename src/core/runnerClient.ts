// A typed client of the runner on the VM (or on this machine), over any Target: every command goes through
// one `runner serve` channel per connection, and through one-shot commands where that channel cannot run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as z from './zod';
import { ClockOffset, measureOffset, type OffsetSample } from './clock';
import { SessionError, errorMessage } from './errors';
import type { Logger } from './logger';
import { EnvironmentTreeError, hashEnvironment, walkEnvironment, type TreeEntry } from './environmentTree';
import { ChannelClosedError, RunnerChannel } from './runnerChannel';
import {
  RUNNER_VERSION,
  aggregateReplySchema,
  type AggregateRecord,
  type ChannelEvent,
  hiddenReplySchema,
  type HiddenReply,
  logReplySchema,
  parseRunnerJson,
  runnerErrorSchema,
  statusSchema,
  streamEventSchema,
  verifySchema,
  type JobSummary,
  type RunnerError,
  type RunnerStatus,
  type ScoreLogEntry,
  type VerifyResult,
} from './runnerProtocol';
import { shellQuote, type ExecResult, type Target } from './target';
import type { AnswerValue, EndQuestion } from './participant';
import {
  recordReplySchema,
  recordsReplySchema,
  restorePlanReplySchema,
  restoreReplySchema,
  snapshotChangesSchema,
  snapshotExportSchema,
  snapshotFileSchema,
  type RecordsReply,
  type RestorePlan,
  type RestoreReply,
  type SessionRecord,
  type SnapshotChanges,
} from './participantProtocol';

export interface RunnerClientOptions {
  target: Target;
  environmentId: string;
  /** The built runner (environments/runner.pyz), uploaded in unprotected mode. */
  runnerSource: string;
  /** Local environment folder (manifest.json, instructions, scorer, starting solution), uploaded in unprotected mode. */
  environmentSource: string;
  /** Protected mode: root owns the runner and the state; nothing is uploaded. */
  protectedMode: boolean;
  /** How to invoke the runner in protected mode (the narrow sudo rule). */
  protectedRunnerCommand?: string;
  /** Whether to send commands through `runner serve` (default true); false runs each as its own command. */
  channel?: boolean;
  logger: Logger;
}

/** How long the runner's channel may take to say hello before the client runs one-shot commands instead. */
export const CHANNEL_HELLO_TIMEOUT_MS = 20_000;

/** Commands that can be sent again on a new channel when the channel died before their reply came. */
const REPEATABLE = new Set(['status', 'log', 'verify', 'instructions', 'export', 'hidden']);

export const DEFAULT_PROTECTED_RUNNER = 'sudo -n /usr/local/bin/rebench-runner';

/**
 * How the uploaded runner is started (unprotected mode), for a quick start: its package is imported straight
 * from the archive (the first argument), which skips runpy, the machinery of `python3 runner.pyz`; -I -S
 * skip the user's site-packages and PYTHON* variables, which the standard-library-only runner does not need
 * (the scorer it starts gets the normal environment); run_and_exit leaves with os._exit once the output is
 * flushed, skipping the interpreter's clean-up of every module (the runner closes and syncs its files itself).
 */
/**
 * The start of the shell command that runs the interpreter recorded in ~/.rebench/python (an absolute path,
 * written by an earlier connection) with the arguments that follow it; it exits with 127 when there is none.
 */
const CACHED_PYTHON_CHANNEL = 'P=; { read -r P < "$HOME/.rebench/python"; } 2>/dev/null; case "$P" in /*) ;; *) exit 127;; esac; exec "$P" -I -S -c';

export const RUNNER_BOOT = 'import sys;sys.path.insert(0,sys.argv.pop(1));from runner.cli import run_and_exit;run_and_exit(sys.argv[1:])';

/**
 * Runner commands one client runs at the same time; more wait for a free slot (e.g. when "Score now" is
 * clicked many times and every request follows the running job). OpenSSH's sshd serves at most 10
 * sessions per connection by default (MaxSessions), SFTP included, and refuses the next channel ("open
 * failed"). It also frees a finished command's session a little after the client sees it close, so each
 * slot can briefly count twice there: 4 slots, twice, plus SFTP stay within 10.
 */
export const MAX_CONCURRENT_COMMANDS = 4;

/** A runner command failed with one of its documented errors (busy, refused, environment, ...). */
export class RunnerCommandError extends SessionError {
  constructor(readonly runnerError: RunnerError) {
    // The runner always explains itself; an empty message would still leave the participant with nothing.
    super(
      runnerError.message.trim() ? runnerError.message : `The runner answered "${runnerError.code}" without saying why; Show Log has the details.`,
      `runner-${runnerError.code}`,
      false,
    );
    this.name = 'RunnerCommandError';
  }
  get job(): JobSummary | undefined {
    return this.runnerError.job;
  }
}

/** The connection dropped while a scoring job was being followed; the job goes on and can be re-attached. */
export class JobInterruptedError extends SessionError {
  constructor(
    readonly jobId: string,
    readonly outputOffset: number,
    cause: string,
  ) {
    super(`Lost the connection while following scoring job ${jobId} (${cause}). The job keeps running on the VM.`, 'job-interrupted', true);
    this.name = 'JobInterruptedError';
  }
}

export interface JobHandlers {
  onJob?(job: { job_id: string; started_at: string; output_offset: number }): void;
  /** A chunk of the job's output; `offset` is the byte offset in the job's output file after this chunk. */
  onOutput?(text: string, offset: number): void;
}

export interface TimedStatus {
  status: RunnerStatus;
  offset: OffsetSample;
}

const instructionsSchema = z.object({ markdown: z.string(), title: z.string() });

export class RunnerClient {
  readonly clock = new ClockOffset();
  private runnerPrefix: string | undefined;
  private homeDir: string | undefined;
  private commandsRunning = 0;
  private readonly waitingForSlot: Array<() => void> = [];
  private channel: RunnerChannel | undefined;
  private opening: Promise<RunnerChannel | undefined> | undefined;
  /** Set when the runner cannot serve a channel (it exits at once): one-shot commands from then on. */
  private channelUnavailable: string | undefined;
  private readonly eventListeners: Array<(event: ChannelEvent) => void> = [];
  private disposed = false;

  constructor(private readonly options: RunnerClientOptions) {}

  get target(): Target {
    return this.options.target;
  }

  /** Whether commands currently go through the runner's channel (for logs and tests). */
  get usesChannel(): boolean {
    return this.channel !== undefined && !this.channel.closed;
  }

  /** Events of the session the channel reports: new score log entries, session changes. */
  onRunnerEvent(listener: (event: ChannelEvent) => void): { dispose(): void } {
    this.eventListeners.push(listener);
    return { dispose: () => this.eventListeners.splice(this.eventListeners.indexOf(listener) >>> 0, 1) };
  }

  /** Closes the channel (the runner's jobs go on); later commands open a new one. */
  dispose(): void {
    this.disposed = true;
    this.channel?.dispose();
    this.channel = undefined;
  }

  /** Makes sure the runner is on the VM at the expected version and the environment is set up. */
  async ensureRunnerSetUp(): Promise<RunnerStatus> {
    const { target, logger } = this.options;
    if (this.options.protectedMode) {
      this.runnerPrefix = this.options.protectedRunnerCommand ?? DEFAULT_PROTECTED_RUNNER;
      const version = (await this.openChannel())?.version ?? (await this.runnerVersion());
      if (version !== RUNNER_VERSION) {
        throw new SessionError(
          version === undefined
            ? `The protected runner could not be run on ${target.label} (${this.runnerPrefix}). Ask your organiser to check the VM's set-up.`
            : `The VM's runner is version ${version}, but this extension needs ${RUNNER_VERSION}. Ask your organiser to update the runner (or install the matching extension version).`,
          'runner-version',
        );
      }
      return (await this.status()).status;
    }

    // The channel starts at once with the interpreter found on an earlier connection (the shell reads its
    // path), while the home folder and the environment's hash are read over SFTP: when it opens, connecting
    // starts Python once and waits for nothing else first.
    const early = this.openChannel(`${CACHED_PYTHON_CHANNEL} ${shellQuote(RUNNER_BOOT)} "$HOME/.rebench/runner.pyz" --home "$HOME/.rebench" serve`);
    early.catch(() => undefined);
    const home = await this.home();
    const runnerHome = `${home}/.rebench`;
    const runnerPath = `${runnerHome}/runner.pyz`;
    const environmentDir = `${runnerHome}/environments/${this.options.environmentId}`;
    const pythonFile = `${runnerHome}/python`;
    const prefix = (python: string) => `${shellQuote(python)} -I -S -c ${shellQuote(RUNNER_BOOT)} ${shellQuote(runnerPath)} --home ${shellQuote(runnerHome)}`;
    const [cachedPython, remoteHash] = await Promise.all([this.readRemoteText(pythonFile), this.readRemoteText(`${environmentDir}/.bundle-hash`)]);
    const cached = cachedPython?.trim();
    let opened = await early;
    if (cached?.startsWith('/')) this.runnerPrefix = prefix(cached);
    else if (opened) {
      this.closeChannel(); // a channel without the interpreter on record cannot be: the shell exits first
      opened = undefined;
    }
    if (!opened || opened.version !== RUNNER_VERSION) {
      const python = await this.findPython();
      if (python !== cached && python.startsWith('/')) await target.writeFile(pythonFile, `${python}\n`).catch(() => undefined);
      if (python !== cached || !opened) {
        this.closeChannel();
        this.channelUnavailable = undefined;
        this.runnerPrefix = prefix(python);
        opened = await this.openChannel();
      }
    }
    const version = opened ? opened.version : await this.runnerVersion();
    if (version !== RUNNER_VERSION) {
      logger.info(`Uploading the runner ${RUNNER_VERSION} to ${runnerPath} (found ${version ?? 'none'}).`);
      this.closeChannel();
      await target.writeFile(runnerPath, fs.readFileSync(this.options.runnerSource), 0o755);
      this.channelUnavailable = undefined;
      await this.openChannel();
    }

    let entries: TreeEntry[];
    try {
      entries = walkEnvironment(this.options.environmentSource);
    } catch (e) {
      if (e instanceof EnvironmentTreeError)
        throw new SessionError(`The environment ${this.options.environmentId} cannot be uploaded: ${e.message}`, 'environment');
      throw e;
    }
    const localHash = hashEnvironment(this.options.environmentSource, entries).sha256;
    let started = false;
    if (remoteHash !== undefined && remoteHash.trim() !== localHash) {
      const current = await this.tryStatus();
      started = current !== undefined && current.state !== 'not_started';
    }
    if (remoteHash?.trim() !== localHash && !started) {
      logger.info(`Uploading environment ${this.options.environmentId} to ${environmentDir}.`);
      await this.uploadFolder(this.options.environmentSource, entries, environmentDir);
      await target.writeFile(`${environmentDir}/.bundle-hash`, `${localHash}\n`);
    } else if (remoteHash?.trim() !== localHash) {
      logger.warn(`The environment on ${target.label} differs from this extension's copy; the session has started, so the VM's copy is kept.`);
    }
    const solutionDir = `${home}/rebench/${this.options.environmentId}`;
    // setup answers with the status, which also serves as the first clock-offset sample.
    return (await this.timedStatus(['setup', '--environment', this.options.environmentId, '--solution-dir', solutionDir], 'setup')).status;
  }

  async home(): Promise<string> {
    this.homeDir ??= await this.options.target.home();
    return this.homeDir;
  }

  /** The status and a fresh clock-offset sample. */
  async status(): Promise<TimedStatus> {
    return this.timedStatus(['status'], 'status');
  }

  /** Runs a command that answers with the status, and takes the round trip as a clock-offset sample. */
  private async timedStatus(args: string[], what: string): Promise<TimedStatus> {
    const sent = Date.now();
    const status = await this.runJson(args, statusSchema, what);
    const offset = measureOffset(sent, Date.now(), Date.parse(status.now));
    this.clock.add(offset);
    return { status, offset };
  }

  async start(): Promise<RunnerStatus> {
    return this.runJson(['start'], statusSchema, 'start');
  }

  async instructions(): Promise<{ markdown: string; title: string }> {
    return this.runJson(['instructions'], instructionsSchema, 'instructions');
  }

  async log(fromIndex = 0): Promise<ScoreLogEntry[]> {
    return (await this.runJson(['log', '--from', String(fromIndex)], logReplySchema, 'log')).entries;
  }

  /**
   * The hidden scores (scoring.visible), for the organiser's tools only: the runner refuses the participant's sudo
   * rule, so on a protected VM this answers over an administrator's login.
   */
  async hidden(): Promise<HiddenReply> {
    return this.runJson(['hidden'], hiddenReplySchema, 'hidden');
  }

  async verify(): Promise<VerifyResult> {
    // verify exits with 6 when the log is not intact but still prints its finding.
    return this.runJson(['verify'], verifySchema, 'verify', [6]);
  }

  async pause(): Promise<RunnerStatus> {
    return this.runJson(['pause'], statusSchema, 'pause');
  }

  async resume(): Promise<RunnerStatus> {
    return this.runJson(['resume'], statusSchema, 'resume');
  }

  /** Ends the session; where the last score counts, the runner makes a final scoring run first. */
  async end(handlers: JobHandlers = {}): Promise<RunnerStatus> {
    // The final scoring run (if any) streams like `score --follow`; the last line is the status.
    const lines = new LineSplitter((line) => {
      const event = streamEventSchema.safeParse(safeJson(line));
      if (!event.success) return;
      if (event.data.type === 'job') handlers.onJob?.(event.data);
      if (event.data.type === 'output') handlers.onOutput?.(event.data.text, event.data.offset);
    });
    const result = await this.exec(['end', '--yes', '--follow'], { onStdout: (t) => lines.push(t) });
    lines.end();
    if (result.code !== 0) throw this.failure(result, 'end');
    return (await this.status()).status;
  }

  // --- what the participant keeps, says and agrees to (environments/runner/participant.py) ---

  /** Adds a note (Markdown) to the session record, with the session time. */
  async note(text: string): Promise<SessionRecord> {
    return (await this.runJson(['note', '--request', JSON.stringify({ text })], recordReplySchema, 'note')).record;
  }

  /** The session record (notes, rules confirmed, restores, giving up, answers) and whether it checks. */
  async records(): Promise<RecordsReply> {
    return this.runJson(['records'], recordsReplySchema, 'records', [6]);
  }

  /** Records that the participant confirmed the rules as shown. */
  async confirmRules(rules: readonly string[]): Promise<SessionRecord> {
    return (await this.runJson(['confirm-rules', '--request', JSON.stringify({ rules })], recordReplySchema, 'confirm-rules')).record;
  }

  /** Records why the participant gives up, then ends the session as end() does. */
  async giveUp(reason: string, choice: string | null, handlers: JobHandlers = {}, reasons?: readonly string[]): Promise<RunnerStatus> {
    const lines = new LineSplitter((line) => {
      const event = streamEventSchema.safeParse(safeJson(line));
      if (!event.success) return;
      if (event.data.type === 'job') handlers.onJob?.(event.data);
      if (event.data.type === 'output') handlers.onOutput?.(event.data.text, event.data.offset);
    });
    // The organiser's reasons travel with the request when they come from the profile (the VM has none).
    const request = JSON.stringify({ reason, ...(choice === null ? {} : { choice }), ...(reasons ? { reasons } : {}) });
    const result = await this.exec(['give-up', '--request', request, '--follow'], { onStdout: (t) => lines.push(t) });
    lines.end();
    if (result.code !== 0) throw this.failure(result, 'give-up');
    return (await this.status()).status;
  }

  /** Records the answers to the end questions (questions given when they come from the profile), or a skip. */
  async answer(answers: Record<string, AnswerValue> | 'skipped', questions?: readonly EndQuestion[]): Promise<SessionRecord> {
    const request = { ...(answers === 'skipped' ? { skipped: true } : { answers }), ...(questions ? { questions } : {}) };
    return (await this.runJson(['answer', '--request', JSON.stringify(request)], recordReplySchema, 'answer')).record;
  }

  /** What changed from a kept solution to another one, or to the solution folder now. */
  async snapshotChanges(snapshotId: string, against?: string): Promise<SnapshotChanges> {
    return this.runJson(['snapshot', 'changes', snapshotId, ...(against ? ['--against', against] : [])], snapshotChangesSchema, 'snapshot changes');
  }

  /** One file of a kept solution, as it was kept. */
  async snapshotFile(snapshotId: string, filePath: string): Promise<Buffer> {
    const reply = await this.runJson(['snapshot', 'show', snapshotId, '--path', filePath], snapshotFileSchema, 'snapshot show');
    return Buffer.from(reply.base64, 'base64');
  }

  /** What restoring a kept solution would write, delete and leave alone (nothing is changed). */
  async restorePlan(snapshotId: string): Promise<RestorePlan> {
    return (await this.runJson(['snapshot', 'plan', snapshotId], restorePlanReplySchema, 'snapshot plan')).plan;
  }

  /** Restores a kept solution; the folder's current state is kept first (reply.kept_as undoes it). */
  async restore(snapshotId: string): Promise<RestoreReply> {
    return this.runJson(['snapshot', 'restore', snapshotId, '--yes'], restoreReplySchema, 'snapshot restore');
  }

  /** A kept solution as a .tar.gz (its files and SNAPSHOT.json). */
  async exportSnapshot(snapshotId: string): Promise<Buffer> {
    const reply = await this.runJson(['snapshot', 'export', snapshotId], snapshotExportSchema, 'snapshot export');
    return Buffer.from(reply.base64, 'base64');
  }

  /** Scores the untouched starting solution once on this machine (before the start); the status uses it. */
  async measureStart(handlers: JobHandlers = {}): Promise<RunnerStatus> {
    const lines = new LineSplitter((line) => {
      const event = streamEventSchema.safeParse(safeJson(line));
      if (!event.success) return;
      if (event.data.type === 'job') handlers.onJob?.(event.data);
      if (event.data.type === 'output') handlers.onOutput?.(event.data.text, event.data.offset);
    });
    const result = await this.exec(['measure-start'], { onStdout: (t) => lines.push(t) });
    lines.end();
    if (result.code !== 0) throw this.failure(result, 'measure-start');
    return (await this.status()).status;
  }

  async export(format: 'metr-csv' | 'jsonl'): Promise<string> {
    const result = await this.exec(['export', '--format', format]);
    if (result.code !== 0) throw this.failure(result, 'export');
    return result.stdout;
  }

  /**
   * Starts a scoring job and follows it to its log entry. When another job is running, follows that
   * one instead (the runner allows one job at a time). A dropped connection rejects with
   * JobInterruptedError, which carries what `attach` needs to pick the job up again.
   */
  async score(handlers: JobHandlers = {}): Promise<ScoreLogEntry> {
    try {
      return await this.stream(['score', '--follow'], handlers, 'score');
    } catch (e) {
      if (e instanceof RunnerCommandError && e.runnerError.code === 'busy' && e.job) {
        this.options.logger.info(`A scoring job is already running (${e.job.job_id}); following it.`);
        return this.attach(e.job.job_id, 0, handlers);
      }
      throw e;
    }
  }

  /** Submits the answer (end scoring), confirmed: the session ends and the answer's scoring run is followed to its entry. */
  async submit(answer: string, handlers: JobHandlers = {}): Promise<ScoreLogEntry> {
    return this.stream(['submit', '--request', JSON.stringify({ answer }), '--yes', '--follow'], handlers, 'submit');
  }

  /** The aggregate of the whole log recorded once the session ended (recorded now if it is not yet). */
  async aggregate(): Promise<AggregateRecord> {
    return (await this.runJson(['aggregate'], aggregateReplySchema, 'aggregate')).aggregate;
  }

  /** Follows a job from a byte offset of its output: after a reconnect nothing is shown twice. */
  async attach(jobId: string, fromOffset: number, handlers: JobHandlers = {}): Promise<ScoreLogEntry> {
    return this.stream(['attach', jobId, '--offset', String(fromOffset)], handlers, 'attach', { jobId, offset: fromOffset });
  }

  private async stream(args: string[], handlers: JobHandlers, what: string, resume?: { jobId: string; offset: number }): Promise<ScoreLogEntry> {
    let jobId = resume?.jobId;
    let offset = resume?.offset ?? 0;
    let entry: ScoreLogEntry | undefined;
    let streamError: RunnerError | undefined;
    const lines = new LineSplitter((line) => {
      const raw = safeJson(line);
      const parsed = streamEventSchema.safeParse(raw);
      if (!parsed.success) {
        const asError = runnerErrorSchema.safeParse((raw as { error?: unknown } | undefined)?.error);
        if (asError.success) streamError = asError.data;
        else this.options.logger.warn(`Ignored a line from the runner's ${what} stream that is not an event: ${line.slice(0, 200)}`);
        return;
      }
      const event = parsed.data;
      switch (event.type) {
        case 'job':
          jobId = event.job_id;
          offset = event.output_offset;
          handlers.onJob?.(event);
          break;
        case 'output':
          offset = event.offset;
          handlers.onOutput?.(event.text, event.offset);
          break;
        case 'entry':
          entry = event.entry;
          break;
        case 'error':
          streamError = event.error;
          break;
      }
    });
    let result: ExecResult;
    try {
      result = await this.exec(args, { onStdout: (t) => lines.push(t) });
    } catch (e) {
      if (jobId !== undefined) throw new JobInterruptedError(jobId, offset, errorMessage(e));
      throw e;
    }
    lines.end();
    if (entry) return entry;
    if (streamError) throw new RunnerCommandError(streamError);
    if (result.code === null && jobId !== undefined) {
      throw new JobInterruptedError(jobId, offset, result.signal ? `ended by ${result.signal}` : 'the link dropped');
    }
    throw this.failure(result, what);
  }

  private async runJson<T>(args: string[], schema: z.ZodType<T>, what: string, okCodes: number[] = []): Promise<T> {
    const result = await this.exec(args);
    if (result.code !== 0 && !okCodes.includes(result.code ?? -1)) throw this.failure(result, what);
    const parsed = parseRunnerJson(schema, result.stdout, what);
    if (!parsed.ok) throw new SessionError(parsed.error, 'runner-reply');
    return parsed.value;
  }

  /** Turns a failed runner call into the runner's own error where it gave one, else a clear message. */
  private failure(result: ExecResult, what: string): SessionError {
    const raw = safeJson(result.stdout.trim().split('\n').pop() ?? '');
    const asError = runnerErrorSchema.safeParse((raw as { error?: unknown } | undefined)?.error);
    if (asError.success) return new RunnerCommandError(asError.data);
    const detail = (result.stderr || result.stdout).trim().slice(-500);
    if (result.code === 127) {
      return new SessionError(`The runner could not be started on ${this.options.target.label}: ${detail}`, 'runner-missing');
    }
    const how = result.code === null ? `was ended${result.signal ? ` by ${result.signal}` : ''}` : `exited with ${result.code}`;
    return new SessionError(`The runner's ${what} command ${how}${detail ? `: ${detail}` : '.'}`, 'runner-failed', result.code === null);
  }

  /**
   * Opens the runner's channel unless it is open, and returns it with the version it announced; undefined
   * when the runner cannot serve one (it exits at once, e.g. a runner from before the channel, or none yet).
   * A dropped link rejects as one-shot commands do.
   */
  private async openChannel(command?: string): Promise<{ channel: RunnerChannel; version: string } | undefined> {
    if (this.options.channel === false || this.channelUnavailable !== undefined || this.disposed) return undefined;
    if (this.channel && !this.channel.closed) return { channel: this.channel, version: await this.channel.hello };
    this.opening ??= this.startChannel(command ?? `${this.runnerPrefix} serve`).finally(() => (this.opening = undefined));
    const channel = await this.opening;
    return channel ? { channel, version: await channel.hello } : undefined;
  }

  private async startChannel(command: string): Promise<RunnerChannel | undefined> {
    const { target, logger } = this.options;
    const channel = new RunnerChannel(target, command, logger);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        channel.hello,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new ChannelClosedError(`no hello within ${CHANNEL_HELLO_TIMEOUT_MS / 1000} s`)), CHANNEL_HELLO_TIMEOUT_MS);
        }),
      ]);
    } catch (e) {
      channel.dispose();
      if (e instanceof ChannelClosedError && e.cause !== undefined) throw e.cause; // the link dropped
      this.channelUnavailable = errorMessage(e);
      logger.info(`The runner on ${target.label} serves no channel (${this.channelUnavailable}); each command runs on its own.`);
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
    }
    channel.onEvent((event) => {
      for (const listener of [...this.eventListeners]) listener(event);
    });
    void channel.done.then(() => {
      if (this.channel === channel) this.channel = undefined;
    });
    this.channel = channel;
    logger.info(`Opened the runner's channel on ${target.label}.`);
    return channel;
  }

  private closeChannel(): void {
    this.channel?.dispose();
    this.channel = undefined;
  }

  /**
   * Runs a runner command through the channel when there is one (its reply is given back as the one-shot
   * command's output), else as its own command. A channel that dies is opened again; a repeatable command
   * is sent once more on the new one, others come back as ended (the caller re-attaches a job).
   */
  private async exec(args: string[], options: Parameters<Target['exec']>[1] = {}): Promise<ExecResult> {
    if (!this.runnerPrefix) throw new SessionError('The session is not prepared yet: connect first.', 'not-prepared');
    const request = channelRequest(args);
    for (let attempt = 0; request && attempt < 2; attempt++) {
      const opened = await this.openChannel();
      if (!opened) break;
      try {
        return await sendOnChannel(opened.channel, request, options);
      } catch (e) {
        if (!(e instanceof ChannelClosedError)) throw e;
        if (e.cause !== undefined) throw e.cause; // the link dropped: as a one-shot command would
        this.options.logger.warn(`The runner's channel closed during ${request.command} (${e.reason}); opening it again.`);
        if (!REPEATABLE.has(request.command) || attempt > 0) return { code: null, signal: null, stdout: '', stderr: e.reason };
      }
    }
    return this.execOneShot(args, options);
  }

  private async execOneShot(args: string[], options: Parameters<Target['exec']>[1] = {}): Promise<ExecResult> {
    if (!this.runnerPrefix) throw new SessionError('The session is not prepared yet: connect first.', 'not-prepared');
    const command = `${this.runnerPrefix} ${args.map(shellQuote).join(' ')} --json`;
    if (this.commandsRunning < MAX_CONCURRENT_COMMANDS) this.commandsRunning++;
    else await new Promise<void>((resolve) => this.waitingForSlot.push(resolve));
    try {
      return await this.options.target.exec(command, options);
    } finally {
      // A waiting command takes over this slot; otherwise it is freed.
      const next = this.waitingForSlot.shift();
      if (next) next();
      else this.commandsRunning--;
    }
  }

  private async runnerVersion(): Promise<string | undefined> {
    const result = await this.options.target.exec(`${this.runnerPrefix} --version`);
    if (result.code !== 0) return undefined;
    return result.stdout.trim().split(/\s+/).pop();
  }

  private async tryStatus(): Promise<RunnerStatus | undefined> {
    try {
      return (await this.status()).status;
    } catch {
      return undefined;
    }
  }

  /**
   * The absolute path of python3 (3.8 or newer). Calling it directly skips version-manager shims (pyenv),
   * which cost a quarter of a second on every runner call.
   */
  private async findPython(): Promise<string> {
    const result = await this.options.target.exec(`python3 -c 'import sys; print("%d.%d" % sys.version_info[:2]); print(sys.executable)'`);
    const [version = '', executable = ''] = result.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim());
    const [major, minor] = version.split('.').map(Number);
    if (result.code !== 0 || major !== 3 || (minor ?? 0) < 8) {
      throw new SessionError(
        result.code !== 0
          ? `python3 is not available on ${this.options.target.label}. The runner needs Python 3.8 or newer: ask your organiser to install it.`
          : `python3 on ${this.options.target.label} is version ${version}; the runner needs 3.8 or newer.`,
        'python-missing',
      );
    }
    return executable.startsWith('/') ? executable : 'python3';
  }

  private async readRemoteText(remotePath: string): Promise<string | undefined> {
    try {
      return (await this.options.target.readFile(remotePath)).toString('utf8');
    } catch {
      return undefined;
    }
  }

  private async uploadFolder(localDir: string, entries: TreeEntry[], remoteDir: string): Promise<void> {
    for (const entry of entries) {
      if (entry.kind !== 'file') continue;
      const local = path.join(localDir, entry.rel);
      const mode = fs.statSync(local).mode & 0o777;
      await this.options.target.writeFile(`${remoteDir}/${entry.rel}`, fs.readFileSync(local), mode);
    }
  }
}

/** A one-shot command line (without --json) as a channel request: its command and named arguments. */
export function channelRequest(args: string[]): { command: string; args: Record<string, unknown> } | undefined {
  const [command, ...rest] = args;
  if (!command) return undefined;
  const named: Record<string, unknown> = {};
  const positional = POSITIONAL[command] ?? [];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i] ?? '';
    if (!token.startsWith('--')) {
      const name = positional.find((p) => !(p in named));
      if (name === undefined) return undefined;
      named[name] = token;
      continue;
    }
    if (token === '--request') {
      // A structured request (notes, answers, ...): on the channel its fields are the command's arguments.
      const request = safeJson(rest[i + 1] ?? '');
      if (request === null || typeof request !== 'object' || Array.isArray(request)) return undefined;
      Object.assign(named, request);
      i++;
      continue;
    }
    const name = token.slice(2).replace(/-/g, '_');
    const value = rest[i + 1];
    if (value === undefined || value.startsWith('--')) {
      named[name] = true;
      continue;
    }
    named[name] = /^(offset|from)$/.test(name) ? Number(value) : value;
    i++;
  }
  return { command, args: named };
}

/** Positional arguments of the commands that take them, by the names the channel uses. */
const POSITIONAL: Record<string, string[]> = { attach: ['job_id'], snapshot: ['action', 'snapshot_id'] };

/** One request on the channel, given back as the one-shot command's output: its lines, then its reply. */
async function sendOnChannel(
  channel: RunnerChannel,
  request: { command: string; args: Record<string, unknown> },
  options: Parameters<Target['exec']>[1] = {},
): Promise<ExecResult> {
  let stdout = '';
  const emit = (text: string) => {
    stdout += text;
    options.onStdout?.(text);
  };
  const reply = await channel.request(request.command, request.args, (event) => emit(`${JSON.stringify(event)}\n`));
  if (reply.error) emit(`${JSON.stringify({ error: reply.error })}\n`);
  else if (request.command === 'export' && typeof (reply.result as { text?: unknown } | undefined)?.text === 'string') {
    emit((reply.result as { text: string }).text);
  } else emit(`${JSON.stringify(reply.result)}\n`);
  return { code: reply.exit_code, signal: null, stdout, stderr: '' };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Splits a stream of text into lines; a partial last line waits for the next chunk. */
export class LineSplitter {
  private buffer = '';
  constructor(private readonly onLine: (line: string) => void) {}
  push(text: string): void {
    this.buffer += text;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onLine(line);
    }
  }
  end(): void {
    const rest = this.buffer.trim();
    this.buffer = '';
    if (rest) this.onLine(rest);
  }
}
