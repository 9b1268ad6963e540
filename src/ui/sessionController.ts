// Connects the participant's actions (commands, the session view, the status bar) to the session core.
import * as vscode from 'vscode';
import { formatDuration } from '../core/clock';
import { SessionError, errorMessage } from '../core/errors';
import { DEADLINE_RULE, preflightPasses, runPreflight, type PreflightCheck } from '../core/preflight';
import { checkAnswer } from '../core/manifest';
import type { ScoreLogEntry } from '../core/runnerProtocol';
import { entryScoreText, formatNormalised, formatScore, normalise, scoredButHidden, visibilityNote } from '../core/scores';
import { Session } from '../core/session';
import { RunnerClient } from '../core/runnerClient';
import { buildViewModel } from '../core/viewModel';
import type { Snapshot } from '../core/webviewProtocol';
import { Settings, StateKeys } from './constants';
import { CountdownStatusBar } from './countdownStatusBar';
import type { ExtensionLog } from './extensionLog';
import { setting } from './settings';
import { measureDemoStart, studyRules, type StudySettings } from './participantFlows';
import { describeChoice, openTarget, type ConnectionChoice, type EnvironmentCatalog } from './targets';

export interface SessionViews {
  setSnapshot(snapshot: Snapshot): void;
  appendJobOutput(jobId: string, text: string): void;
}

/** Whether two choices open the same connection (the same profile or host, user, environment and host key). */
function sameConnection(a: ConnectionChoice, b: ConnectionChoice): boolean {
  if (a.kind !== b.kind || a.environmentId !== b.environmentId || describeChoice(a) !== describeChoice(b)) return false;
  return a.kind === 'local' || (b.kind === 'ssh' && a.name === b.name && a.fingerprint === b.fingerprint);
}

/** A choice as the participant knows it: the profile's name with its address, or this machine. */
function titleOf(choice: ConnectionChoice): string {
  if (choice.kind === 'local') return 'this machine';
  const where = describeChoice(choice);
  return choice.name === where || choice.name === choice.alias ? where : `"${choice.name}" (${where})`;
}

export class SessionController implements vscode.Disposable {
  private session: Session | undefined;
  private choice: ConnectionChoice | undefined;
  private readonly views: SessionViews[] = [];
  /** The countdown in the status bar (its notices and tooltip are read by the extension's tests). */
  readonly statusBar: CountdownStatusBar;
  private refreshTimer: NodeJS.Timeout | undefined;
  private sessionSubscriptions: { dispose(): void }[] = [];
  private connecting: Promise<void> | undefined;
  private hostKeyNote = '';
  /** The last snapshot of a session left running when its connection was closed to connect elsewhere. */
  private leftRunning: Snapshot | undefined;
  /** The checks shown before the last start, for the log and the extension's tests. */
  lastPreflight: PreflightCheck[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: ExtensionLog,
    private readonly environments: EnvironmentCatalog,
  ) {
    this.statusBar = new CountdownStatusBar(
      () => setting<number[]>(Settings.reminderMinutes, [60, 15, 5]),
      () => this.publish(),
    );
    this.disposables.push(this.statusBar);
    // New countdown thresholds reach every view at once, through the next snapshot.
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${Settings.section}.countdown`)) this.publish();
      }),
    );
    this.publish();
  }

  addView(view: SessionViews): void {
    this.views.push(view);
    view.setSnapshot(this.snapshot());
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  /** The open session, if any (read by the extension's tests). */
  get current(): Session | undefined {
    return this.session;
  }

  /** What the status bar shows now (for the extension's tests). */
  statusBarText(): string | undefined {
    return this.statusBar.text;
  }

  /** The snapshot every view shows now: built by the view model, with the countdown thresholds of the settings. */
  snapshot(): Snapshot {
    return buildViewModel({
      session: this.session,
      connecting: this.connecting !== undefined,
      target: this.choice ? describeChoice(this.choice) : null,
      leftRunning: this.leftRunning,
      countdown: {
        warningS: setting(Settings.warningMinutes, 30) * 60,
        criticalS: setting(Settings.criticalMinutes, 5) * 60,
      },
      nowMs: Date.now(),
    });
  }

  /** Pushes the current state to every view, the status bar and the context keys. */
  publish(): void {
    const snapshot = this.snapshot();
    for (const view of this.views) view.setSnapshot(snapshot);
    this.statusBar.update(snapshot);
    const state = snapshot.session?.state;
    void vscode.commands.executeCommand('setContext', 'rebench.connected', this.session !== undefined);
    void vscode.commands.executeCommand('setContext', 'rebench.canPause', !!snapshot.environment?.pausesAllowed && state === 'running');
    void vscode.commands.executeCommand('setContext', 'rebench.canResume', !!snapshot.environment?.pausesAllowed && state === 'paused');
    void vscode.commands.executeCommand('setContext', 'rebench.canSubmit', !!snapshot.environment?.submit && state === 'running');
  }

  /** Connects to a target and opens its session; replaces any current connection. */
  async connect(choice: ConnectionChoice): Promise<void> {
    if (this.connecting) return this.connecting;
    this.connecting = this.doConnect(choice).finally(() => {
      this.connecting = undefined;
      this.publish();
    });
    return this.connecting;
  }

  /**
   * Before a connection elsewhere closes the one to a running session: says so, and what happens to that
   * session, and asks. True when there is nothing to ask or the participant goes on.
   */
  async confirmSwitch(choice: ConnectionChoice): Promise<boolean> {
    const session = this.session;
    const state = session?.status?.state;
    if (!session || !this.choice || (state !== 'running' && state !== 'paused')) return true;
    if (sameConnection(this.choice, choice)) return true;
    const here = titleOf(this.choice);
    const there = titleOf(choice);
    const left = session.secondsLeft(Date.now());
    const go = `Connect to ${choice.kind === 'local' ? 'This Machine' : choice.name}`;
    const answer = await vscode.window.showWarningMessage(
      `A session is ${state === 'paused' ? 'paused' : 'running'} on ${here}${left === null ? '' : ` (${formatDuration(left)} left)`}.`,
      {
        modal: true,
        detail:
          `Connecting to ${there} closes the connection to ${here}. The session there goes on: its clock runs on the VM ` +
          `and does not stop while you are away. A scoring job that is running finishes on the VM and is kept. ` +
          `The countdown stays in the status bar, and you can connect back to ${here} at any time.`,
      },
      go,
    );
    return answer === go;
  }

  private async doConnect(choice: ConnectionChoice): Promise<void> {
    // The session being left keeps its countdown on screen while there is no other: its clock runs on.
    const state = this.session?.status?.state;
    if (this.session && (state === 'running' || state === 'paused')) this.leftRunning = this.snapshot();
    await this.disconnect(false);
    this.choice = choice;
    this.publish();
    this.log.info(`Connecting to ${describeChoice(choice)} (environment ${choice.environmentId}).`);
    const opened = await openTarget(choice, this.context, this.log, this.environments);
    this.hostKeyNote = opened.hostKeyNote;
    const client = new RunnerClient({
      target: opened.target,
      environmentId: choice.environmentId,
      runnerSource: this.environments.runnerPath(),
      environmentSource: opened.environmentSource,
      protectedMode: choice.kind === 'ssh' && choice.protectedMode,
      protectedRunnerCommand: choice.kind === 'ssh' ? choice.runnerCommand : undefined,
      logger: this.log,
    });
    const session = new Session(client, this.log);
    try {
      await session.open();
    } catch (e) {
      session.dispose();
      throw e;
    }
    this.session = session;
    this.leftRunning = undefined;
    this.sessionSubscriptions = [
      session.on('onChange', () => this.publish()),
      session.on('onJobOutput', (jobId, text) => {
        for (const view of this.views) view.appendJobOutput(jobId, text);
      }),
      session.on('onEntry', (entry) => this.announceEntry(entry)),
    ];
    await this.context.globalState.update(StateKeys.lastConnection, choice);
    this.scheduleRefresh();
    this.log.info(`Connected: ${session.status?.environment.title}, session ${session.status?.state}.`);
    this.publish();
  }

  /** Reconnects to the last VM after a window reload or restart. */
  async restore(): Promise<void> {
    const last = this.context.globalState.get<ConnectionChoice>(StateKeys.lastConnection);
    if (!last || !setting(Settings.reconnectOnStartup, true)) return;
    try {
      await this.connect(last);
    } catch (e) {
      this.log.warn(`Could not reconnect to ${describeChoice(last)}: ${errorMessage(e)}`);
      void this.showError(`Could not reconnect to ${describeChoice(last)}: ${errorMessage(e)}`, () => this.connect(last));
    }
  }

  async disconnect(forget = true): Promise<void> {
    this.stopRefresh();
    for (const s of this.sessionSubscriptions) s.dispose();
    this.sessionSubscriptions = [];
    this.session?.dispose();
    this.session = undefined;
    if (forget) {
      this.choice = undefined;
      this.leftRunning = undefined;
      await this.context.globalState.update(StateKeys.lastConnection, undefined);
    }
    this.publish();
  }

  private scheduleRefresh(): void {
    this.stopRefresh();
    const every = setting(Settings.statusRefreshSeconds, 30) * 1000;
    const tick = () => {
      const session = this.session;
      if (session && session.connection.kind === 'connected') {
        session.refresh().catch((e) => this.log.warn(`Status refresh failed: ${errorMessage(e)}`));
      }
      this.refreshTimer = setTimeout(tick, every);
    };
    this.refreshTimer = setTimeout(tick, every);
  }

  private stopRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** The open session, or an error that says to connect first (for the participant's flows). */
  requireOpen(): Session {
    return this.requireSession();
  }

  /** What the organiser's profile says of rules, end questions, give-up reasons and the away time. */
  studySettings(): StudySettings | undefined {
    return this.choice?.kind === 'ssh' ? this.choice.study : undefined;
  }

  /** Measures the demo's starting score on this machine before its first start (local target only). */
  async measureDemoStart(): Promise<void> {
    const session = this.requireSession();
    if (session.client.target.kind !== 'local') return;
    await measureDemoStart(session, this.log);
    this.publish();
  }

  private requireSession(): Session {
    if (!this.session) throw new SessionError('Not connected. Run "RE-Bench: Connect to a VM…" first.', 'not-connected');
    return this.session;
  }

  /** Shows the pre-flight checks and the rules, then starts the clock on the VM once confirmed. */
  async startSession(options: { confirmed?: boolean } = {}): Promise<boolean> {
    const session = this.requireSession();
    await session.refresh();
    const status = session.status!;
    if (status.state !== 'not_started') {
      void vscode.window.showInformationMessage(`RE-Bench: the session has already started (${status.state}).`);
      return false;
    }
    const checks = await runPreflight(session.client.target, status, session.client.clock.offsetMs, this.hostKeyNote);
    this.lastPreflight = checks;
    for (const c of checks) this.log.info(`Pre-flight ${c.name}: ${c.result} — ${c.detail}`);
    const symbol = { pass: '✓', warn: '⚠', fail: '✗' } as const;
    const lines = checks.map((c) => `${symbol[c.result]} ${c.name}: ${c.detail}`);
    const env = status.environment;
    const rules = [
      `You will have ${formatDuration(env.time_limit_s)} from the moment you start. The clock runs on the VM: closing VS Code does not stop it.`,
      env.pauses_allowed ? 'Pauses are allowed in this study.' : 'Pauses are not allowed in this study.',
      `${env.aggregation === 'best' ? 'Your best score counts' : 'Your last score counts'} (${env.direction} is better).`,
      ...[visibilityNote(env.visible)].filter((n): n is string => n !== null),
      DEADLINE_RULE,
    ];
    if (!preflightPasses(checks)) {
      await vscode.window.showErrorMessage('RE-Bench: the pre-flight check failed, so the session was not started.', {
        modal: true,
        detail: `${lines.join('\n')}\n\nAsk your organiser to fix the failed check.`,
      });
      return false;
    }
    const study = studyRules(session, this.studySettings());
    const studyText = study?.length
      ? `\n\nThe study's rules:\n${study.map((r) => `• ${r}`).join('\n')}\n\nStarting confirms that you agree to them; your confirmation is recorded on the VM with the time.`
      : '';
    if (!options.confirmed) {
      const start = study?.length ? 'Agree to the Rules and Start' : 'Start the Clock';
      const answer = await vscode.window.showInformationMessage(
        `Start your ${formatDuration(env.time_limit_s)} session on ${session.client.target.label}?`,
        { modal: true, detail: `Pre-flight check:\n${lines.join('\n')}\n\n${rules.join('\n')}${studyText}` },
        start,
      );
      if (answer !== start) return false;
    }
    if (study?.length) {
      const record = await session.client.confirmRules(study);
      this.log.info(`The study's rules were confirmed at ${record.time}.`);
    }
    await session.start();
    this.log.info(`Session started at ${session.status?.started_at}; deadline ${session.status?.deadline}.`);
    this.publish();
    return true;
  }

  async scoreNow(): Promise<ScoreLogEntry | undefined> {
    const session = this.requireSession();
    const reason = session.status?.environment.submit
      ? 'This environment scores one answer that you submit at the end: use Submit Answer… when you are done.'
      : session.scoreDisabledReason();
    if (reason) {
      void vscode.window.showWarningMessage(`RE-Bench: ${reason}`);
      return undefined;
    }
    this.log.info('Score now: starting a scoring job.');
    const entry = await session.scoreNow();
    return entry;
  }

  private announceEntry(entry: ScoreLogEntry): void {
    const env = this.session?.status?.environment;
    this.log.info(`Score log entry ${entry.index}: ${entryScoreText(entry)} (${entry.message.slice(0, 200)})`);
    if (!env) return;
    if (entry.manual) {
      void vscode.window.showInformationMessage('RE-Bench: your answer was submitted. It is scored by a person later.');
    } else if (scoredButHidden(entry)) {
      void vscode.window.showInformationMessage(`RE-Bench: scoring run ${entry.index + 1} scored. The score is hidden from you; the organiser sees it.`);
    } else if (entry.score === null) {
      void vscode.window.showWarningMessage(`RE-Bench: scoring run ${entry.index + 1} gave no score: ${entry.message.slice(0, 300)}`);
    } else {
      const yn = normalise(entry.score, env.starting_score, env.reference_score);
      void vscode.window.showInformationMessage(
        `RE-Bench: score ${formatScore(entry.score)} (normalised ${formatNormalised(yn)}, ${env.direction} is better).`,
      );
    }
  }

  async showInstructions(): Promise<{ title: string; markdown: string }> {
    const session = this.requireSession();
    return session.client.instructions();
  }

  async pause(): Promise<void> {
    await this.requireSession().pause();
  }

  async resume(): Promise<void> {
    await this.requireSession().resume();
  }

  /**
   * Submit Answer… (end scoring): an input box showing the answer's form (checked against the organiser's
   * pattern as it is typed), a confirmation that says the session ends, then the answer is scored once as
   * the session's final entry. Returns the entry, or undefined when the participant stopped.
   */
  async submitAnswer(given?: { answer: string; confirmed?: boolean }): Promise<ScoreLogEntry | undefined> {
    const session = this.requireSession();
    const submit = session.status?.environment.submit;
    if (!submit) throw new SessionError('This environment scores your work while you work (Score now): there is no answer to submit.', 'not-end-scoring');
    const reason = session.scoreDisabledReason();
    if (reason) throw new SessionError(reason.replace('to score', 'to submit'), 'score-disabled');
    const answer =
      given?.answer ??
      (await vscode.window.showInputBox({
        title: 'RE-Bench: Submit Answer',
        prompt: `Answer format: ${submit.format}`,
        placeHolder: submit.format,
        ignoreFocusOut: true,
        validateInput: (v) => (v === '' ? null : checkAnswer(v, submit)),
      }));
    if (answer === undefined || answer === '') return undefined;
    const problem = checkAnswer(answer, submit);
    if (problem) throw new SessionError(problem, 'answer-form');
    if (!given?.confirmed) {
      const go = 'Submit and End Session';
      const shown = answer.length > 200 ? `${answer.slice(0, 200)}…` : answer;
      const picked = await vscode.window.showWarningMessage(
        'Submit this answer and end your session?',
        {
          modal: true,
          detail: `Your answer: ${shown}\n\nIt is scored once and that score counts. The session ends now: the clock stops, and nothing more can be submitted or scored. This cannot be undone.`,
        },
        go,
      );
      if (picked !== go) return undefined;
    }
    this.log.info(`Submit answer: ${answer.length} characters; the session ends.`);
    const entry = await session.submit(answer);
    this.log.info(`The answer was scored: ${entry.manual ? 'scored by a person later' : formatScore(entry.score)}; the session ended.`);
    return entry;
  }

  async endSession(options: { confirmed?: boolean } = {}): Promise<boolean> {
    const session = this.requireSession();
    const env = session.status?.environment;
    if (!options.confirmed) {
      const end = 'End Session';
      const what = env?.submit
        ? 'No answer is submitted: ending now leaves the session without a score (use Submit Answer… to end with your answer).'
        : env?.aggregation === 'last'
          ? 'A final scoring run is made first, and its score is the one that counts.'
          : 'Your best score so far is the one that counts.';
      const answer = await vscode.window.showWarningMessage(
        'End your session now?',
        { modal: true, detail: `${what} The clock stops, Score now closes for good, and this cannot be undone. Your score log stays on the VM.` },
        end,
      );
      if (answer !== end) return false;
    }
    await session.end();
    this.log.info('Session ended by the participant.');
    return true;
  }

  async exportLog(format: 'json' | 'metr-csv', destination?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const session = this.requireSession();
    const text = format === 'json' ? `${JSON.stringify(await session.client.log(0), null, 2)}\n` : await session.client.export('metr-csv');
    const env = session.status?.environment.id ?? 'session';
    const uri =
      destination ??
      (await vscode.window.showSaveDialog({
        title: 'Export score log',
        defaultUri: vscode.Uri.joinPath(
          vscode.workspace.workspaceFolders?.[0]?.uri ?? this.context.globalStorageUri,
          `${env}-score-log.${format === 'json' ? 'json' : 'csv'}`,
        ),
        filters: format === 'json' ? { JSON: ['json'] } : { CSV: ['csv'] },
      }));
    if (!uri) return undefined;
    await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
    this.log.info(`Exported the score log (${format}) to ${uri.toString()}.`);
    return uri;
  }

  async verifyLog(): Promise<{ intact: boolean; message: string }> {
    const result = await this.requireSession().client.verify();
    const message = result.intact
      ? `The score log is intact: ${result.entries} entries, each chained to the one before.`
      : `The score log is NOT intact: ${result.reason ?? 'unknown problem'}.`;
    await this.requireSession().refresh();
    return { intact: result.intact, message };
  }

  /** Where the participant's solution lives, for "Open solution folder". */
  solutionLocation(): { choice: ConnectionChoice; dir: string } | undefined {
    const dir = this.session?.status?.solution_dir;
    return this.choice && dir ? { choice: this.choice, dir } : undefined;
  }

  async showError(message: string, retry?: () => Promise<unknown>): Promise<void> {
    const actions = retry ? ['Retry', 'Show Log'] : ['Show Log'];
    const answer = await vscode.window.showErrorMessage(`RE-Bench: ${message}`, ...actions);
    if (answer === 'Show Log') this.log.show();
    if (answer === 'Retry' && retry) await retry().catch((e) => this.showError(errorMessage(e), retry));
  }

  dispose(): void {
    void this.disconnect(false);
    for (const d of this.disposables) d.dispose();
  }
}
