// The organiser's end questions as a form in an editor panel: short text, a choice, a 1-5 scale. Every
// question may be left empty and the whole form skipped; closing it records nothing (it can be opened again
// with "Answer the End Questions…"). The form never blocks anything: the session has already ended.
import * as vscode from 'vscode';
import { errorMessage, formatZodError } from '../core/errors';
import type { AnswerValue, EndQuestion } from '../core/participant';
import { questionsFormMessageSchema, type QuestionsFormMessage, type QuestionsFormState, type QuestionsHostMessage } from '../core/questionsProtocol';
import { renderWebviewHtml, webviewResourceRoots } from './webviewHtml';

export interface EndQuestionsHandlers {
  /** Records the answers (or the skip) on the VM; a rejection is shown in the form. */
  send(answers: Record<string, AnswerValue> | 'skipped'): Promise<void>;
  log: { warn(msg: string): void };
}

export class EndQuestionsPanel implements vscode.Disposable {
  static readonly viewType = 'rebench.endQuestions';
  static current: EndQuestionsPanel | undefined;

  private state: QuestionsFormState;
  private ready = false;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly settled: Promise<'answered' | 'skipped' | 'closed'>;
  private settle!: (outcome: 'answered' | 'skipped' | 'closed') => void;

  /** Opens the form (or brings the open one forward with these questions). */
  static show(extensionUri: vscode.Uri, questions: readonly EndQuestion[], handlers: EndQuestionsHandlers): EndQuestionsPanel {
    EndQuestionsPanel.current?.dispose();
    const panel = vscode.window.createWebviewPanel(EndQuestionsPanel.viewType, 'RE-Bench: End Questions', vscode.ViewColumn.Active, {
      enableScripts: true,
      enableCommandUris: false,
      retainContextWhenHidden: true,
      localResourceRoots: webviewResourceRoots(extensionUri),
    });
    EndQuestionsPanel.current = new EndQuestionsPanel(panel, extensionUri, questions, handlers);
    return EndQuestionsPanel.current;
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    questions: readonly EndQuestion[],
    private readonly handlers: EndQuestionsHandlers,
  ) {
    this.state = { title: 'Questions about your session', questions: [...questions], state: 'open', error: null };
    this.settled = new Promise((resolve) => (this.settle = resolve));
    panel.webview.html = renderWebviewHtml({
      webview: panel.webview,
      extensionUri,
      title: 'End questions',
      scriptPath: 'dist/media/endQuestions.js',
      stylePath: 'media/endQuestions.css',
    });
    panel.webview.onDidReceiveMessage((m: unknown) => void this.receive(m), null, this.disposables);
    panel.onDidDispose(() => this.dispose(), null, this.disposables);
  }

  /** How the form ended: answered, skipped, or closed without either. */
  get outcome(): Promise<'answered' | 'skipped' | 'closed'> {
    return this.settled;
  }

  /** What the form shows now (for the extension's tests). */
  get formState(): QuestionsFormState {
    return this.state;
  }

  /**
   * A message from the form, checked against the catalogue. The extension's tests call this too, with what
   * the form would post; a malformed message is logged and ignored.
   */
  async receive(raw: unknown): Promise<void> {
    const parsed = questionsFormMessageSchema.safeParse(raw);
    if (!parsed.success) {
      this.handlers.log.warn(`Ignored a malformed message from the end questions form: ${formatZodError(parsed.error)}`);
      return;
    }
    const message: QuestionsFormMessage = parsed.data;
    if (message.type === 'ready') {
      this.ready = true;
      this.post();
      return;
    }
    if (this.state.state !== 'open') return;
    const answers = message.type === 'skip' ? 'skipped' : message.answers;
    this.update({ state: 'sending', error: null });
    try {
      await this.handlers.send(answers);
      this.update({ state: answers === 'skipped' ? 'skipped' : 'answered' });
      this.settle(answers === 'skipped' ? 'skipped' : 'answered');
    } catch (e) {
      this.update({ state: 'open', error: errorMessage(e) });
    }
  }

  private update(change: Partial<QuestionsFormState>): void {
    this.state = { ...this.state, ...change };
    this.post();
  }

  private post(): void {
    if (!this.ready) return;
    const message: QuestionsHostMessage = { type: 'state', state: this.state };
    this.panel.webview
      .postMessage(message)
      .then(undefined, (e: unknown) => this.handlers.log.warn(`Could not post to the end questions form: ${errorMessage(e)}`));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (EndQuestionsPanel.current === this) EndQuestionsPanel.current = undefined;
    this.settle('closed');
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
