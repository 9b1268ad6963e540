// The view's status and control sections: connection, log integrity, environment, time left,
// Score now, the running job and the actions row. Each section keeps its nodes and updates them in place,
// so focus, scroll position and open details survive the snapshots that arrive every few seconds.
import { formatShortDuration } from '../core/chart';
import { JOB_OUTPUT_VIEW_LIMIT, type Snapshot, type ViewAction } from '../core/webviewProtocol';
import { timeGivenNotice, timeGivenTotal } from '../core/timeLeft';
import { timerText } from './countdown';
import { h, replaceChildren } from './dom';
import { JobOutputView } from './outputBuffer';

export type Layout = 'view' | 'history';

export interface ViewContext {
  snap: Snapshot;
  layout: Layout;
  nowMs: number;
  /** Actions whose request is waiting for its reply. */
  pending: ReadonlySet<ViewAction>;
  /** The last reply error of each action, until it is tried again. */
  errors: ReadonlyMap<ViewAction, string>;
}

export type Request = (action: ViewAction, index?: number) => void;

export interface Section {
  readonly root: HTMLElement;
  update(ctx: ViewContext): void;
  /** Called every second for what changes with time alone. */
  tick?(ctx: ViewContext): void;
}

let idCounter = 0;
export function uniqueId(prefix: string): string {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * A button bound to one view action. Disabled with aria-disabled rather than `disabled`, so it keeps
 * keyboard focus and a screen reader still reaches it and reads why it is unavailable.
 */
export class ActionButton {
  readonly el: HTMLButtonElement;

  constructor(
    readonly action: ViewAction,
    private readonly label: string,
    request: Request,
    kind: 'primary' | 'secondary' | 'quiet',
  ) {
    this.el = h('button', { type: 'button', class: `btn ${kind}`, 'data-focus-key': `action:${action}` }, label);
    this.el.addEventListener('click', () => {
      if (this.el.getAttribute('aria-disabled') === 'true') return;
      request(action);
    });
  }

  set(options: { visible?: boolean; disabled?: boolean; busyLabel?: string | null; describedBy?: string | null; label?: string }): void {
    const { visible = true, disabled = false, busyLabel = null, describedBy = null } = options;
    show(this.el, visible);
    setText(this.el, busyLabel ?? options.label ?? this.label);
    if (disabled || busyLabel) this.el.setAttribute('aria-disabled', 'true');
    else this.el.removeAttribute('aria-disabled');
    if (busyLabel) this.el.setAttribute('aria-busy', 'true');
    else this.el.removeAttribute('aria-busy');
    if (describedBy) this.el.setAttribute('aria-describedby', describedBy);
    else this.el.removeAttribute('aria-describedby');
  }

  /** Standard state from the context: busy while its request is in flight. */
  apply(ctx: ViewContext, visible: boolean, disabled = false): void {
    this.set({ visible, disabled, busyLabel: ctx.pending.has(this.action) ? `${this.label}…` : null });
  }
}

/** Where a failed request's error is shown, next to its button; role="alert" announces it once. */
export class ErrorSlot {
  readonly el: HTMLElement = h('div', { class: 'action-error', role: 'alert', id: uniqueId('error'), hidden: true });

  set(text: string | null): void {
    setText(this.el, text ?? '');
    show(this.el, !!text);
  }
}

// --- connection -----------------------------------------------------------------------------------

const CONNECTION_WORDS: Record<Snapshot['connection']['kind'], string> = {
  connected: 'Connected',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  disconnected: 'Disconnected',
  failed: 'Connection failed',
};

export class ConnectionSection implements Section {
  readonly root: HTMLElement;
  private readonly dot = h('span', { class: 'status-dot', 'aria-hidden': 'true' });
  private readonly word = h('span', { class: 'connection-word' });
  private readonly target = h('div', { class: 'connection-target' });
  private readonly detail = h('div', { class: 'connection-detail muted' });
  private readonly connect: ActionButton;
  private readonly disconnect: ActionButton;
  private readonly connectRow: HTMLElement;
  private readonly error = new ErrorSlot();

  constructor(
    request: Request,
    private readonly withButtons: boolean,
  ) {
    this.connect = new ActionButton('connect', 'Connect', request, 'primary');
    this.disconnect = new ActionButton('disconnect', 'Disconnect', request, 'quiet');
    this.connectRow = h('div', { class: 'button-row' }, this.connect.el);
    this.root = h(
      'section',
      { class: 'connection', 'aria-label': 'Connection' },
      h('div', { class: 'connection-line' }, this.dot, this.word, withButtons ? this.disconnect.el : null),
      this.target,
      this.detail,
      withButtons ? this.connectRow : null,
      this.error.el,
    );
  }

  update(ctx: ViewContext): void {
    const c = ctx.snap.connection;
    this.dot.className = `status-dot ${c.kind}`;
    setText(this.word, CONNECTION_WORDS[c.kind]);
    setText(this.target, c.target ?? '');
    show(this.target, !!c.target);
    // "Connected to X" only repeats the two lines above; reasons and retry times are worth showing.
    const detail = c.detail.trim();
    const redundant =
      detail === '' || ((c.kind === 'connected' || c.kind === 'connecting') && !!c.target && detail.includes(c.target)) || detail === CONNECTION_WORDS[c.kind];
    setText(this.detail, redundant ? '' : detail);
    show(this.detail, !redundant);
    if (!this.withButtons) return;
    const canConnect = c.kind === 'disconnected' || c.kind === 'failed';
    this.connect.apply(ctx, canConnect);
    show(this.connectRow, canConnect);
    this.disconnect.apply(ctx, c.kind === 'connected' || c.kind === 'reconnecting');
    this.error.set(ctx.errors.get('connect') ?? ctx.errors.get('disconnect') ?? null);
  }
}

// --- score log integrity --------------------------------------------------------------------------

export class IntegritySection implements Section {
  readonly root = h('div', { class: 'integrity-wrap' });
  private key: string | null = null;

  update(ctx: ViewContext): void {
    const { logIntact, logProblem } = ctx.snap;
    const key = logIntact ? '' : (logProblem ?? '');
    if (key === this.key) return;
    this.key = key;
    const problem = (logProblem ?? 'its hash chain does not verify').replace(/[.\s]+$/, '');
    replaceChildren(
      this.root,
      !logIntact &&
        h(
          'div',
          { class: 'warning-block', role: 'alert' },
          h('strong', {}, 'The score log is not intact: '),
          `${problem}. Your organiser can check it with the runner's verify command.`,
        ),
    );
    show(this.root, !logIntact);
  }
}

// --- environment ----------------------------------------------------------------------------------

export class EnvironmentSection implements Section {
  readonly root = h('header', { class: 'environment' });
  private key = '';

  update(ctx: ViewContext): void {
    const env = ctx.snap.environment;
    const mode = ctx.snap.session?.mode ?? null;
    const key = JSON.stringify([env, mode]);
    if (key === this.key) return;
    this.key = key;
    show(this.root, !!env);
    if (!env) return replaceChildren(this.root);
    replaceChildren(
      this.root,
      h('h2', { class: 'environment-title' }, h('span', {}, env.title), ' ', h('span', { class: 'version muted' }, `v${env.version}`)),
      h(
        'p',
        { class: 'rules' },
        h('span', { class: 'rule' }, env.direction === 'lower' ? 'Lower is better' : 'Higher is better'),
        h('span', { class: 'visually-hidden' }, '. '),
        h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
        h(
          'span',
          { class: 'rule' },
          env.submit ? 'Your submitted answer is scored once' : env.aggregation === 'best' ? 'Your best score counts' : 'Your last score counts',
        ),
      ),
      mode === 'unprotected' && h('p', { class: 'muted small' }, 'Unprotected mode: the runner and the score log belong to your own account.'),
    );
  }
}

// --- time left ------------------------------------------------------------------------------------

export class TimerSection implements Section {
  readonly root: HTMLElement;
  private readonly label = h('div', { class: 'timer-label', id: uniqueId('timer-label') });
  private readonly value: HTMLElement;
  private readonly detail = h('div', { class: 'timer-detail muted' });
  /** Time the organiser gave back: who, how much, why and the new deadline; read out when it changes. */
  private readonly timeGiven = h('div', { class: 'time-given', role: 'status' });
  private readonly start: ActionButton;
  private readonly resume: ActionButton;
  private readonly error = new ErrorSlot();
  private readonly buttonRow: HTMLElement;

  /** withButtons: Start session before the start and Resume session while paused (the sidebar view). */
  constructor(request: Request, withButtons: boolean) {
    // role="timer" is live "off" by default; set it explicitly so no reader announces every second.
    this.value = h('div', { class: 'timer-value', role: 'timer', 'aria-live': 'off', 'aria-labelledby': this.label.id });
    this.start = new ActionButton('start', 'Start session', request, 'primary');
    this.resume = new ActionButton('resume', 'Resume session', request, 'primary');
    this.buttonRow = h('div', { class: 'button-row' }, this.start.el, this.resume.el);
    this.root = h(
      'section',
      { class: 'timer', 'aria-label': 'Time' },
      this.label,
      this.value,
      this.detail,
      this.timeGiven,
      withButtons ? this.buttonRow : null,
      this.error.el,
    );
  }

  update(ctx: ViewContext): void {
    const session = ctx.snap.session;
    show(this.root, !!session);
    if (!session) return;
    this.tick(ctx);
    const given = [timeGivenNotice(session), timeGivenTotal(session)].filter(Boolean).join(' ');
    setText(this.timeGiven, given);
    show(this.timeGiven, given !== '');
    const notStarted = session.state === 'not_started';
    const paused = session.state === 'paused';
    const offline = ctx.snap.connection.kind !== 'connected';
    this.start.apply(ctx, notStarted, offline);
    this.resume.apply(ctx, paused, offline);
    show(this.buttonRow, notStarted || paused);
    this.error.set(ctx.errors.get('start') ?? ctx.errors.get('resume') ?? null);
  }

  tick(ctx: ViewContext): void {
    const session = ctx.snap.session;
    if (!session) return;
    const t = timerText(session, ctx.snap.countdown, ctx.nowMs);
    setText(this.label, t.label);
    setText(this.value, t.value);
    setText(this.detail, t.detail);
    show(this.detail, t.detail !== '');
    this.root.className = `timer tone-${t.tone}`;
  }
}

// --- Score now ------------------------------------------------------------------------------------

export class ScoreSection implements Section {
  readonly root: HTMLElement;
  private readonly button: ActionButton;
  private readonly reason = h('div', { class: 'score-reason muted', id: uniqueId('score-reason') });
  private readonly deadline = h('div', { class: 'deadline-warning', role: 'status', id: uniqueId('deadline-warning') });
  private readonly error = new ErrorSlot();
  private readonly exportButton: ActionButton | null;
  private jobSeenInFlight = false;

  private readonly submitButton: ActionButton;
  private readonly format = h('div', { class: 'answer-format muted', id: uniqueId('answer-format') });

  constructor(request: Request, withExport: boolean) {
    this.button = new ActionButton('score', 'Score now', request, 'primary');
    // End scoring: one answer, submitted once, in place of Score now.
    this.submitButton = new ActionButton('submitAnswer', 'Submit answer…', request, 'primary');
    this.submitButton.el.title = 'Submit your answer: it is scored once and the session ends';
    this.exportButton = withExport ? new ActionButton('exportLog', 'Export log', request, 'secondary') : null;
    this.root = h(
      'section',
      { class: 'score-now', 'aria-label': 'Score now' },
      h('div', { class: 'button-row' }, this.button.el, this.submitButton.el, this.exportButton?.el),
      this.format,
      this.reason,
      this.deadline,
      this.error.el,
    );
  }

  update(ctx: ViewContext): void {
    const { snap } = ctx;
    // Before the start, while paused and after the end, the time section says what to do (or that
    // scoring is closed); a Score now that cannot be used would only be noise there.
    const running = snap.session?.state === 'running';
    show(this.root, running || (!!snap.session && this.exportButton !== null));
    // A request in flight reads "Starting…" until the job appears; then the host's reason takes over
    // (the host may answer the request only when the job has finished).
    const submit = snap.environment?.submit ?? null;
    this.root.setAttribute('aria-label', submit ? 'Submit answer' : 'Score now');
    const inFlight = ctx.pending.has(submit ? 'submitAnswer' : 'score');
    if (!inFlight) this.jobSeenInFlight = false;
    else if (snap.job) this.jobSeenInFlight = true;
    const starting = inFlight && !snap.job && !this.jobSeenInFlight;
    const reason = starting ? null : snap.scoreDisabledReason;
    setText(this.reason, reason ?? '');
    show(this.reason, running && !!reason);
    setText(this.deadline, snap.deadlineWarning ?? '');
    show(this.deadline, running && !reason && !!snap.deadlineWarning);
    this.button.set({
      visible: running && !submit,
      disabled: reason !== null,
      busyLabel: starting ? 'Starting…' : null,
      describedBy: reason ? this.reason.id : null,
    });
    this.submitButton.set({
      visible: running && !!submit,
      disabled: reason !== null || inFlight,
      // While the answer box and the confirmation are open nothing is sent yet; once the job runs, it is scoring.
      busyLabel: inFlight && snap.job ? 'Scoring the answer…' : null,
      describedBy: reason ? this.reason.id : submit ? this.format.id : null,
    });
    setText(this.format, submit ? `Answer format: ${submit.format}. Submitting ends the session.` : '');
    show(this.format, running && !!submit);
    this.exportButton?.apply(ctx, snap.entries.length > 0);
    const exportError = this.exportButton ? ctx.errors.get('exportLog') : undefined;
    this.error.set(ctx.errors.get('score') ?? ctx.errors.get('submitAnswer') ?? (exportError ? `Export log: ${exportError}` : null));
  }
}

// --- the scoring job ------------------------------------------------------------------------------

export class JobSection implements Section {
  readonly root: HTMLElement;
  private readonly line = h('div', { class: 'job-line' });
  private readonly details: HTMLDetailsElement;
  private readonly summary = h('summary', {});
  private readonly output = new JobOutputView(JOB_OUTPUT_VIEW_LIMIT, 'Scoring job output');
  private jobId: string | null = null;
  private finished = false;
  private startedLocalMs = 0;

  constructor() {
    this.details = h('details', { class: 'job-details' }, this.summary, this.output.element);
    this.root = h('section', { class: 'job', 'aria-label': 'Scoring job' }, this.line, this.details);
    show(this.root, false);
  }

  update(ctx: ViewContext): void {
    const job = ctx.snap.job;
    if (job) {
      if (job.jobId !== this.jobId || this.finished) {
        if (job.jobId !== this.jobId) this.details.open = true;
        this.jobId = job.jobId;
        this.finished = false;
        this.root.classList.remove('finished');
        delete this.line.dataset.key;
      }
      const started = Date.parse(job.startedIso);
      this.startedLocalMs = Number.isNaN(started) ? ctx.nowMs : started - (ctx.snap.session?.clockOffsetMs ?? 0);
      this.output.set(job.output);
      setText(this.summary, 'Output');
      show(this.root, true);
      this.tick(ctx);
    } else if (this.jobId !== null && !this.finished) {
      // Keep the last job's output at hand (a traceback is often why there was no score).
      this.finished = true;
      this.root.classList.add('finished');
      this.details.open = false;
      setText(this.summary, 'Output of the last scoring job');
      replaceChildren(this.line, h('span', {}, 'Last scoring job '), h('code', { class: 'job-id', title: this.jobId }, this.jobId), h('span', {}, ' finished'));
    }
  }

  tick(ctx: ViewContext): void {
    const job = ctx.snap.job;
    if (!job) return;
    const running = formatShortDuration((ctx.nowMs - this.startedLocalMs) / 1000);
    const text = `${job.jobId}\u0000${running}`;
    if (this.line.dataset.key === text) return;
    this.line.dataset.key = text;
    replaceChildren(
      this.line,
      h('span', { class: 'spinner', 'aria-hidden': 'true' }),
      h('span', {}, 'Scoring job '),
      h('code', { class: 'job-id', title: job.jobId }, job.jobId),
      h('span', {}, ` running for ${running}`),
    );
  }

  /** A jobOutput delta: ignored unless it belongs to the job on screen. */
  append(jobId: string, text: string): boolean {
    if (jobId !== this.jobId || this.finished) return false;
    this.output.append(text);
    return true;
  }
}

// --- actions --------------------------------------------------------------------------------------

const ACTION_LABELS: Partial<Record<ViewAction, string>> = {
  showInstructions: 'Instructions',
  showHistory: 'History',
  pause: 'Pause',
  end: 'End session',
  exportLog: 'Export log',
  openSolution: 'Solution folder',
  showLog: 'Show log',
  addNote: 'Add note',
  giveUp: 'Give up',
};

const ACTION_TITLES: Partial<Record<ViewAction, string>> = {
  showInstructions: "Show the environment's instructions",
  showHistory: 'Open the score history in an editor tab',
  pause: 'Stop the session clock for a while',
  end: 'End the session now; scoring closes',
  exportLog: 'Save the score log to a file',
  openSolution: 'Open the solution folder',
  showLog: "Show the extension's log",
  addNote: 'Record what you tried and why, with the session time',
  giveUp: 'Stop here and say why; the session ends',
};

export class ActionsSection implements Section {
  readonly root: HTMLElement;
  private readonly buttons: ActionButton[];
  private readonly error = new ErrorSlot();

  constructor(request: Request) {
    // Resume is not here: while paused it is the time section's main button.
    const order: ViewAction[] = ['showInstructions', 'showHistory', 'addNote', 'pause', 'end', 'giveUp', 'exportLog', 'openSolution', 'showLog'];
    this.buttons = order.map((a) => {
      const b = new ActionButton(a, ACTION_LABELS[a] ?? a, request, 'secondary');
      b.el.title = ACTION_TITLES[a] ?? '';
      return b;
    });
    // The visible label is shortened to fit two buttons a row; the name says it in full.
    this.buttons.find((b) => b.action === 'openSolution')?.el.setAttribute('aria-label', 'Open solution folder');
    this.root = h(
      'section',
      { class: 'actions', 'aria-label': 'Session actions' },
      h('div', { class: 'action-grid' }, ...this.buttons.map((b) => b.el)),
      this.error.el,
    );
  }

  update(ctx: ViewContext): void {
    const { environment: env, session, entries, connection } = ctx.snap;
    const state = session?.state;
    // A session left running on a VM this window is not connected to is shown with its countdown; what
    // needs the VM waits until it is connected again.
    const reachable = connection.kind === 'connected' || connection.kind === 'reconnecting';
    const visible: Record<string, boolean> = {
      showInstructions: !!env && reachable,
      showHistory: !!env,
      pause: !!env?.pausesAllowed && state === 'running' && reachable,
      end: (state === 'running' || state === 'paused') && reachable,
      exportLog: !!session && entries.length > 0 && reachable,
      openSolution: !!session && reachable,
      showLog: true,
      addNote: !!session && state !== 'not_started' && reachable,
      giveUp: (state === 'running' || state === 'paused') && reachable,
    };
    for (const b of this.buttons) b.apply(ctx, visible[b.action] ?? false);
    const failed = this.buttons.find((b) => ctx.errors.has(b.action));
    this.error.set(failed ? `${ACTION_LABELS[failed.action]}: ${ctx.errors.get(failed.action)}` : null);
  }
}
