// What the participant keeps, says and agrees to, in VS Code: notes, giving up, the end questions, the rules
// before the clock starts, the kept solutions of the history (show changes, restore), the offer to pause
// after an absence, and the demo's first steps. Each flow is one function; actions.ts runs them.
import * as vscode from 'vscode';
import { formatDuration } from '../core/clock';
import { SessionError } from '../core/errors';
import { awayOffer, checkAnswers, checkGiveUp, checkNote, type AnswerValue, type EndQuestion } from '../core/participant';
import { EndQuestionsPanel } from './endQuestionsPanel';
import { describeLeftOut, restoreConfirmation, type SnapshotChanges } from '../core/participantProtocol';
import type { ScoreLogEntry } from '../core/runnerProtocol';
import { entryScoreText, formatScore } from '../core/scores';
import type { Session } from '../core/session';
import { StateKeys } from './constants';
import type { ExtensionLog } from './extensionLog';

export const SNAPSHOT_SCHEME = 'rebench-snapshot';

/** What the organiser's profile adds to the VM's settings (the VM's own come first). */
export interface StudySettings {
  rules?: string[];
  end_questions?: EndQuestion[];
  give_up_reasons?: string[];
  away_after_minutes?: number;
}

function settingsOf(session: Session, fromProfile: StudySettings | undefined): StudySettings {
  const p = session.status?.participant;
  return {
    rules: p?.rules ?? fromProfile?.rules,
    end_questions: p?.end_questions ?? fromProfile?.end_questions,
    give_up_reasons: p?.give_up_reasons ?? fromProfile?.give_up_reasons,
    away_after_minutes: p?.away_after_minutes ?? fromProfile?.away_after_minutes,
  };
}

/** The rules to show in the pre-flight, and what confirming them records. */
export function studyRules(session: Session, fromProfile: StudySettings | undefined): string[] | undefined {
  return settingsOf(session, fromProfile).rules;
}

// ---------------------------------------------------------------------------------------------
// Notes

export async function addNote(session: Session, log: ExtensionLog, text?: string): Promise<boolean> {
  const written =
    text ??
    (await vscode.window.showInputBox({
      title: 'RE-Bench: Add Note',
      prompt: 'What you tried and why (Markdown). It is recorded on the VM with the session time.',
      placeHolder: 'e.g. Tried a fused kernel: **2x faster**, but wrong for n < 16',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? null : checkNote(v).ok ? null : (checkNote(v) as { error: string }).error),
    }));
  if (written === undefined || written.trim() === '') return false;
  const checked = checkNote(written);
  if (!checked.ok) throw new SessionError(checked.error, 'note');
  const record = await session.client.note(checked.value);
  log.info(`Note ${record.index} recorded at ${record.elapsed_s === null ? record.time : formatDuration(record.elapsed_s)}.`);
  void vscode.window.showInformationMessage(
    `RE-Bench: note recorded${record.elapsed_s === null ? '' : ` at ${formatDuration(record.elapsed_s)} of the session`}.`,
  );
  return true;
}

// ---------------------------------------------------------------------------------------------
// Giving up and the end questions

export async function giveUp(
  session: Session,
  log: ExtensionLog,
  fromProfile: StudySettings | undefined,
  preset?: { reason: string; choice: string | null },
): Promise<boolean> {
  const reasons = settingsOf(session, fromProfile).give_up_reasons;
  let choice: string | null = preset?.choice ?? null;
  let reason = preset?.reason ?? '';
  if (!preset) {
    if (reasons?.length) {
      const other = 'Another reason…';
      const picked = await vscode.window.showQuickPick([...reasons, other], { title: 'RE-Bench: Give Up — why?', ignoreFocusOut: true });
      if (picked === undefined) return false;
      if (picked !== other) choice = picked;
    }
    const typed = await vscode.window.showInputBox({
      title: 'RE-Bench: Give Up',
      prompt: choice ? `"${choice}". Anything to add? (optional)` : 'Why do you give up? (recorded on the VM for the organiser)',
      ignoreFocusOut: true,
      validateInput: (v) => (choice === null && v.trim() === '' ? 'Say why you give up.' : null),
    });
    if (typed === undefined) return false;
    reason = typed;
    const confirm = 'Give Up and End Session';
    const answer = await vscode.window.showWarningMessage(
      'Give up and end your session now?',
      { modal: true, detail: 'Your reason is recorded, the session ends as End Session does, and this cannot be undone. Your score log stays on the VM.' },
      confirm,
    );
    if (answer !== confirm) return false;
  }
  const checked = checkGiveUp(reason, choice, reasons);
  if (!checked.ok) throw new SessionError(checked.error, 'give-up');
  const fromVm = !!session.status?.participant?.give_up_reasons;
  await session.client.giveUp(checked.value.reason, checked.value.choice, {}, fromVm ? undefined : reasons);
  await session.refresh();
  log.info(`The participant gave up (${checked.value.choice ?? 'own reason'}); the session ended.`);
  return true;
}

/**
 * The end questions. Given answers (or "skipped") are recorded at once; otherwise the form opens in the editor
 * and this returns "form" without waiting for it: every question can be left empty, the whole form skipped,
 * and nothing waits on it. Returns undefined when there are no questions or they were answered.
 */
export async function answerEndQuestions(
  session: Session,
  log: ExtensionLog,
  fromProfile: StudySettings | undefined,
  extensionUri: vscode.Uri,
  given?: Record<string, AnswerValue> | 'skipped',
): Promise<'answered' | 'skipped' | 'form' | undefined> {
  const questions = settingsOf(session, fromProfile).end_questions;
  if (!questions?.length || session.status?.participant?.answered) return undefined;
  const fromVm = !!session.status?.participant?.end_questions;
  const send = async (answers: Record<string, AnswerValue> | 'skipped'): Promise<void> => {
    if (answers !== 'skipped') {
      // The runner checks them too; checked here first, the form can say what is wrong before anything is sent.
      const checked = checkAnswers(questions, answers);
      if (!checked.ok) throw new SessionError(checked.error, 'answers');
    }
    await session.client.answer(answers, fromVm ? undefined : questions);
    await session.refresh();
    log.info(answers === 'skipped' ? 'The end questions were skipped.' : 'The end questions were answered.');
  };
  if (given !== undefined) {
    await send(given);
    return given === 'skipped' ? 'skipped' : 'answered';
  }
  EndQuestionsPanel.show(extensionUri, questions, { send, log });
  return 'form';
}

// ---------------------------------------------------------------------------------------------
// Kept solutions: show changes, restore

function keptId(entry: ScoreLogEntry): string {
  const s = entry.snapshot;
  if (!s) throw new SessionError(`Run ${entry.index + 1} was scored before solutions were kept: there is nothing to compare or restore.`, 'no-snapshot');
  if ('error' in s) throw new SessionError(`The solution of run ${entry.index + 1} could not be kept: ${s.error}`, 'no-snapshot');
  return s.id;
}

function entryAt(session: Session, index: number): ScoreLogEntry {
  const entry = session.entries.find((e) => e.index === index);
  if (!entry) throw new SessionError(`There is no run ${index + 1} in the score log.`, 'no-entry');
  return entry;
}

export function runLabel(entry: ScoreLogEntry): string {
  return `run ${entry.index + 1} (${entryScoreText(entry)} at ${formatDuration(entry.elapsed_s)})`;
}

/** Serves kept files to diff editors: rebench-snapshot:/<path>?<snapshot id>. */
export class SnapshotDocuments implements vscode.TextDocumentContentProvider {
  constructor(private readonly current: () => Session | undefined) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const session = this.current();
    if (!session) throw new SessionError('Not connected: the kept solution is on the VM.', 'not-connected');
    const [id, side] = uri.query.split('&');
    const rel = uri.path.replace(/^\//, '');
    if (side === 'current') {
      const r = await session.client.target.exec(`cat -- ${shellWord(`${session.status?.solution_dir ?? ''}/${rel}`)}`);
      return r.code === 0 ? r.stdout : '';
    }
    return (await session.client.snapshotFile(id ?? '', rel)).toString('utf8');
  }
}

function shellWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Shows what changed since a run: against the solution folder now, or against the run before. */
export async function showChanges(session: Session, index: number, against?: 'current' | 'previous'): Promise<SnapshotChanges | undefined> {
  const entry = entryAt(session, index);
  const from = keptId(entry);
  const previous = [...session.entries].reverse().find((e) => e.index < index && e.snapshot && 'id' in e.snapshot);
  let mode = against;
  if (!mode) {
    const items: { label: string; mode: 'current' | 'previous' }[] = [{ label: 'With the solution folder now', mode: 'current' }];
    if (previous) items.push({ label: `With the run before: ${runLabel(previous)}`, mode: 'previous' });
    mode = items.length === 1 ? 'current' : (await vscode.window.showQuickPick(items, { title: `RE-Bench: compare ${runLabel(entry)}` }))?.mode;
    if (!mode) return undefined;
  }
  const base = mode === 'previous' && previous ? keptId(previous) : from;
  const changes = await session.client.snapshotChanges(base, mode === 'previous' ? from : undefined);
  if (changes.changes.length === 0) {
    void vscode.window.showInformationMessage(
      `RE-Bench: no changes between ${mode === 'previous' ? `${runLabel(previous!)} and ${runLabel(entry)}` : `${runLabel(entry)} and the solution folder now`}.`,
    );
    return changes;
  }
  const picked =
    changes.changes.length === 1
      ? changes.changes[0]
      : (
          await vscode.window.showQuickPick(
            changes.changes.map((c) => ({ label: c.path, description: `${c.change}${c.binary ? ', binary' : ''}`, change: c })),
            { title: `RE-Bench: ${changes.changes.length} files changed — pick one to compare` },
          )
        )?.change;
  if (!picked) return changes;
  if (picked.binary) {
    void vscode.window.showInformationMessage(`RE-Bench: ${picked.path} is a binary file (${picked.change}); it cannot be shown as text.`);
    return changes;
  }
  const left = vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: `/${picked.path}`, query: base });
  const right =
    mode === 'previous'
      ? vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: `/${picked.path}`, query: from })
      : session.client.target.kind === 'local'
        ? vscode.Uri.file(`${session.status?.solution_dir ?? ''}/${picked.path}`)
        : vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: `/${picked.path}`, query: `${from}&current` });
  const title = `${picked.path}: ${mode === 'previous' ? `${runLabel(previous!)} ↔ ${runLabel(entry)}` : `${runLabel(entry)} ↔ now`}`;
  await vscode.commands.executeCommand('vscode.diff', left, right, title);
  return changes;
}

/** Restores the solution of a run after a confirmation that says what is overwritten; offers Undo. */
export async function restoreSolution(session: Session, log: ExtensionLog, index: number, options: { confirmed?: boolean } = {}): Promise<boolean> {
  const entry = entryAt(session, index);
  const id = keptId(entry);
  const plan = await session.client.restorePlan(id);
  const label = runLabel(entry);
  if (!options.confirmed) {
    const { message, detail } = restoreConfirmation(label, plan);
    const leftOut =
      entry.snapshot && 'left_out' in entry.snapshot && entry.snapshot.left_out.length
        ? `\n\nNot kept at that run, so not restored: ${entry.snapshot.left_out.slice(0, 5).map(describeLeftOut).join('; ')}${entry.snapshot.left_out_total > 5 ? ` and ${entry.snapshot.left_out_total - 5} more` : ''}.`
        : '';
    const restore = 'Restore';
    const answer = await vscode.window.showWarningMessage(message, { modal: true, detail: detail + leftOut }, restore);
    if (answer !== restore) return false;
  }
  const result = await session.client.restore(id);
  log.info(`Restored the solution of ${label} (${id}); the state before is kept as ${result.kept_as.id}.`);
  if (!options.confirmed) {
    const undo = 'Undo';
    void vscode.window
      .showInformationMessage(`RE-Bench: restored the solution of ${label}: ${result.write.length} written, ${result.delete.length} deleted.`, undo)
      .then(async (a) => {
        if (a !== undo) return;
        await session.client.restore(result.kept_as.id);
        log.info(`Undid the restore: the state kept as ${result.kept_as.id} is back.`);
        void vscode.window.showInformationMessage('RE-Bench: the restore was undone.');
      });
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Away: the offer to pause

/** Watches editor and terminal activity and offers a pause after the organiser's time away. */
export class AwayWatcher implements vscode.Disposable {
  private lastActivityMs = Date.now();
  private declinedAtMs: number | undefined;
  private offering = false;
  private readonly timer: NodeJS.Timeout;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly current: () => Session | undefined,
    private readonly fromProfile: () => StudySettings | undefined,
    private readonly pause: () => Promise<unknown>,
    checkEveryMs = 30_000,
  ) {
    const seen = () => (this.lastActivityMs = Date.now());
    this.subscriptions = [
      vscode.workspace.onDidChangeTextDocument(seen),
      vscode.window.onDidChangeTextEditorSelection(seen),
      vscode.window.onDidChangeActiveTextEditor(seen),
      vscode.window.onDidChangeActiveTerminal(seen),
      vscode.window.onDidOpenTerminal(seen),
      vscode.window.onDidChangeWindowState((s) => s.focused && seen()),
    ];
    this.timer = setInterval(() => void this.check(), checkEveryMs);
  }

  /** Scoring counts as activity. */
  activity(): void {
    this.lastActivityMs = Date.now();
  }

  async check(nowMs = Date.now()): Promise<boolean> {
    const session = this.current();
    if (!session?.status || this.offering) return false;
    const offer = awayOffer({
      lastActivityMs: this.lastActivityMs,
      nowMs,
      awayAfterMinutes: settingsOf(session, this.fromProfile()).away_after_minutes,
      pausesAllowed: session.status.environment.pauses_allowed,
      state: session.status.state,
      scoring: session.status.job !== null,
      declinedAtMs: this.declinedAtMs,
    });
    if (!offer) return false;
    this.offering = true;
    try {
      const pause = 'Pause Session';
      const answer = await vscode.window.showWarningMessage(`RE-Bench: ${offer.message}`, pause, 'Keep Going');
      if (answer === pause) await this.pause();
      else this.declinedAtMs = Date.now();
      this.lastActivityMs = Date.now();
      return answer === pause;
    } finally {
      this.offering = false;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
    for (const s of this.subscriptions) s.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The demo

/** Measures the demo's starting score on this machine once, before the start. */
export async function measureDemoStart(session: Session, log: ExtensionLog): Promise<void> {
  const status = session.status;
  if (!status || status.state !== 'not_started' || status.environment.starting_score_measured_at) return;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'RE-Bench: measuring the starting score on this machine…', cancellable: false },
    async () => {
      const after = await session.client.measureStart();
      log.info(
        `Starting score measured on this machine: ${formatScore(after.environment.starting_score)} (the manifest says ${formatScore(after.environment.manifest_starting_score ?? after.environment.starting_score)}).`,
      );
      await session.refresh();
    },
  );
}

/** Opens the demo's solution folder: in this window (as a workspace folder) or a new one, as chosen before. */
export async function openDemoFolder(context: vscode.ExtensionContext, dir: string, choose = true): Promise<'here' | 'new' | undefined> {
  const uri = vscode.Uri.file(dir);
  let where = context.globalState.get<'here' | 'new'>(StateKeys.demoFolderWhere);
  if (!where && choose) {
    const here = 'Add to This Window';
    const other = 'Open in a New Window';
    const answer = await vscode.window.showInformationMessage(
      "RE-Bench: open the demo's solution folder — the file to improve?",
      { modal: false, detail: 'Your choice is remembered for next time.' },
      here,
      other,
    );
    if (!answer) return undefined;
    where = answer === here ? 'here' : 'new';
    await context.globalState.update(StateKeys.demoFolderWhere, where);
  }
  if (!where) return undefined;
  if (where === 'here') {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (!folders.some((f) => f.uri.fsPath === uri.fsPath)) vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri, name: 'RE-Bench demo solution' });
    const file = vscode.Uri.joinPath(uri, 'solution.py');
    await vscode.window.showTextDocument(file, { preview: false }).then(undefined, () => undefined);
  } else await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
  return where;
}
